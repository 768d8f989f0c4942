"""`search/release.py`: choose the best trial, retrain it, register it behind an alias, card and git tag."""
