"""The Hume-Reaction dataset package: layout readers, synthetic reaction videos, feature schema, TFDS builder.

Imports neither torch nor jax; reading the built dataset needs no TensorFlow.
"""
