"""Model inputs from a built TFDS dataset: splits and batches (dataset.py), which features a run uses and
how they become one input array (assembly.py), and ViPER's token layout (token_layout.py)."""
