"""Flax NNX models: the ViPER Perceiver, the probing MLP and the MuSe LSTM baseline."""
