"""Zero-shot querying baseline: ask a chat model for the intensities, parse its answer.

torch is only imported lazily (by the command that runs the model), never by the parser.
"""
from eri_jax.query.parse import parse_scores

__all__ = ["parse_scores"]
