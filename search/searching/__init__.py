"""`search/run.py`: settings, the Tuner over the conditional space, the search's tracking in MLflow, resume."""
