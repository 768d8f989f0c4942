"""Entrypoints that start the cluster's servers: the same code in containers, in `cluster/local.py` and in tests."""
