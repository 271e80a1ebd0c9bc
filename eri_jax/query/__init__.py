"""Zero-shot querying baseline: ask a chat model for the intensities, parse its answer, evaluate.

`parse_scores` turns one answer into scores; `scores` fills and describes a split's scores;
`evaluate.evaluate_answers` writes the run's files; `run` gets answers from the dataset or a model;
`python -m eri_jax.query` does it all (see `cli`). torch is imported lazily, only when a model runs.
"""
from eri_jax.query.parse import parse_scores

__all__ = ["parse_scores"]
