"""Scoring predictions: metrics (Pearson per emotion, the mean over defined emotions), the evaluation
files of a split (files.py), confusion plots, bootstrap statistics, and evaluating a run (run.py)."""
