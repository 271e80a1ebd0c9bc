"""The TFDS dataset `hume_reaction` (importing this registers it with TFDS; reading does not need it)."""
from tfds_hume.hume_reaction.hume_reaction_dataset_builder import BUILDER_CONFIGS, Builder, HumeReactionConfig

HumeReaction = Builder

__all__ = ["BUILDER_CONFIGS", "Builder", "HumeReaction", "HumeReactionConfig"]
