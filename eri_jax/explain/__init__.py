"""Explanations of a trained run's predictions: integrated gradients per modality block and per frame."""
