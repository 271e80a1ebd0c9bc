"""The JAX side: data loading from TFDS, Flax NNX models, training, sweeps, evaluation and reports."""
