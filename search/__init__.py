"""The driver: run a search, release its best trial, report what it found."""
