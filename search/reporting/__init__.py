"""`search/report.py`: a search's Markdown report, figures and per-trial table, from MLflow alone."""
