"""Training a run: presets and the config resolver, the one step, the loop, checkpoints and sharding.

presets.py (defaults per model) -> config.py (`TrainConfig`, `make_config`: the preset with the user's
flags over it) -> step.py (`update`: loss, gradients and optimizer update, the step of every training
path; optimizer, predict) -> loop.py (`train`: set up, `train_epochs`, evaluate the best epoch).
inputs.py assembles a run's splits; checkpoints.py keeps epochs with orbax; restore.py reads a
finished run back; sharding.py splits batches over local devices.
"""
