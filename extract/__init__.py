"""The PyTorch side: decode media, run every extractor once per video, cache the outputs, export to TFDS.

Never imports jax.
"""
