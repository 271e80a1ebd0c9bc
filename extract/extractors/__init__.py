"""Extractors: clips -> named features, through the cache. See `base` for the interface new ones implement."""
from extract.extractors.base import Extractor, FeatureValue, Media, Missing, RunSummary, check_output, run_extractor
from extract.extractors.pixels import PixelsExtractor
from extract.extractors.shipped import ShippedExtractor

__all__ = ["Extractor", "FeatureValue", "Media", "Missing", "RunSummary", "check_output", "run_extractor",
           "PixelsExtractor", "ShippedExtractor"]
