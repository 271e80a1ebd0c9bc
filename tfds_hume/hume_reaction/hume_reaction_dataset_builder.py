"""TFDS builder `hume_reaction`: packs an extraction export (manifest.json + per-clip npz files) into ArrayRecord.

The feature dims are not known until the manifest is: `_info()` takes them from the `manifest` builder kwarg
(what `tfds_hume.build.build` passes); without it (the `tfds build --manual_dir EXPORT_DIR` route) the schema
is installed from `<manual_dir>/manifest.json` when generation starts; when reading an existing dataset it
comes back from the stored features.json and metadata.json, so reading needs neither a manifest nor this
module.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import tensorflow_datasets as tfds

from tfds_hume import schema
from tfds_hume.manifest import MANIFEST_NAME, FeatureSpec, Manifest
from tfds_hume.records import SPLITS

log = logging.getLogger(__name__)

_DESCRIPTION = """\
Emotional reaction intensity (ERI): reaction videos with self-reported intensities of E emotions in [0, 1]
(Hume-Reaction: Adoration, Amusement, Anxiety, Disgust, Empathic-Pain, Fear, Surprise), stored as
pre-extracted features. Per example: `id`, `split`, `labels` (float32[E], NaN where unlabelled),
`features/<key>` (frame: float32[T, D], video: float32[D], text, frame_text: string[T]), `missing/<key>`
(bool) and `frame_mask/<key>` (bool[T], per-frame kinds). Feature dims, model ids, prompts, the emotion
list and whether the data is synthetic are in `info.metadata`. Examples of a split are stored in
ascending clip-id order (no shuffling), so index i of a split is well defined.
"""

_CITATION = """\
@inproceedings{christ2022muse,
  title={The {MuSe} 2022 Multimodal Sentiment Analysis Challenge: Humor, Emotional Reactions, and Stress},
  author={Christ, Lukas and Amiriparian, Shahin and Baird, Alice and Tzirakis, Panagiotis and
          Kathan, Alexander and M{\\"u}ller, Niklas and Stappen, Lukas and Me{\\ss}ner, Eva-Maria and
          K{\\"o}nig, Andreas and Cowen, Alan and Cambria, Erik and Schuller, Bj{\\"o}rn W.},
  booktitle={Proceedings of the 3rd International on Multimodal Sentiment Analysis Workshop and Challenge},
  year={2022}
}
"""


@dataclasses.dataclass(eq=False)
class HumeReactionConfig(tfds.core.BuilderConfig):
    """A feature set. `sources`: extractor sources kept from the manifest (a source matches `s` or `s:*`;
    None keeps all). `synthetic`: the manifest's synthetic flag this config requires (None: either)."""

    sources: tuple[str, ...] | None = None
    synthetic: bool | None = None

    def selects(self, spec: FeatureSpec) -> bool:
        if self.sources is None:
            return True
        return any(spec.source == s or spec.source.startswith(s + ":") for s in self.sources)


BUILDER_CONFIGS = [
    HumeReactionConfig(
        name="demo", sources=("pixels", "shipped"), synthetic=True,
        description="Built-in synthetic reaction videos (labelled synthetic): shipped per-frame CSV "
                    "features and downsampled pixels."),
    HumeReactionConfig(
        name="shipped", sources=("pixels", "shipped"), synthetic=False,
        description="Real data: the dataset's shipped per-frame CSV features and downsampled pixels."),
    HumeReactionConfig(
        name="full", sources=None, synthetic=None,
        description="Every feature of the export: all extractors of the paper (visual, audio, text, "
                    "FAU, Video-LLaVA / LLaVA descriptions and embeddings) plus the shipped ones."),
]


class Builder(tfds.core.GeneratorBasedBuilder):
    """hume_reaction: pre-extracted ERI features in ArrayRecord, readable without TensorFlow."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: manifest-driven schema, ArrayRecord, no shuffling."}
    BUILDER_CONFIGS = BUILDER_CONFIGS
    DEFAULT_CONFIG_NAME = "demo"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Hume-Reaction is EULA-gated: request it from the organisers of the MuSe 2022 (MuSe-Reaction) or ABAW5
(emotional reaction intensity) challenge and unpack it into DIR. Then run

    python -m extract --data-root DIR --config shipped

which extracts the features and writes an export folder holding `manifest.json` (and builds this dataset
already). To rebuild from an existing export, pass that folder as the manual dir:
`tfds_hume.build.build(EXPORT_DIR, config=...)` or `tfds build ... --manual_dir EXPORT_DIR`.
"""

    def __init__(self, *, manifest: Manifest | str | os.PathLike | None = None,
                 file_format: str | None = None, **kwargs: Any):
        """`manifest`: a Manifest, its file or its export folder; needed to build, not to read.
        Relative feature-file paths in a Manifest object resolve against the current folder."""
        self._manifest: Manifest | None = None
        self._export_dir = Path(".")
        self._where = "manifest"  # how errors name the manifest
        if manifest is not None:
            self._set_manifest(manifest)
        # ArrayRecord (random access, no TensorFlow) unless told otherwise.
        super().__init__(file_format=file_format or "array_record", **kwargs)

    def _set_manifest(self, manifest: Manifest | str | os.PathLike) -> None:
        if isinstance(manifest, Manifest):
            self._manifest, self._where = manifest, f"manifest of {manifest.dataset!r}"
            return
        path = Path(manifest)
        self._export_dir = path if path.is_dir() else path.parent
        self._manifest = Manifest.read(path)
        self._where = os.fspath(self._export_dir / MANIFEST_NAME)

    def _selected_features(self) -> dict[str, FeatureSpec]:
        config: HumeReactionConfig = self.builder_config
        m = self._manifest
        if config.synthetic is not None and m.synthetic != config.synthetic:
            kind = "synthetic" if m.synthetic else "real"
            raise ValueError(
                f"config {config.name!r} is for {'synthetic' if config.synthetic else 'real'} data, but "
                f"{self._where} ({m.dataset!r}) is {kind}: pick one of "
                f"{[c.name for c in self.BUILDER_CONFIGS if c.synthetic in (None, m.synthetic)]}")
        kept = {k: s for k, s in m.features.items() if config.selects(s)}
        if not kept:
            raise ValueError(f"config {config.name!r} keeps sources {config.sources}, but {self._where} "
                             f"has only {sorted({s.source for s in m.features.values()})}")
        dropped = sorted(set(m.features) - set(kept))
        if dropped:
            log.info("config %s leaves out features %s", config.name, dropped)
        return kept

    def _schema(self) -> tuple[tfds.features.FeaturesDict, tfds.core.MetadataDict]:
        feats = self._selected_features()
        meta = tfds.core.MetadataDict(schema.metadata(self._manifest, feats, self.builder_config.name))
        return schema.features_dict(feats, len(self._manifest.emotions)), meta

    def _info(self) -> tfds.core.DatasetInfo:
        features, meta = self._schema() if self._manifest is not None else (None, None)
        # Plain DatasetInfo: dataset_info_from_configs would need README/CITATIONS files beside the module.
        return tfds.core.DatasetInfo(
            builder=self, description=_DESCRIPTION, features=features, metadata=meta,
            citation=_CITATION, disable_shuffling=True)

    def _download_and_prepare(self, dl_manager, download_config):
        if self._manifest is None:
            # The `tfds build --manual_dir` route: the schema can only be known now. TFDS caches `info`
            # per builder at construction, so the features and metadata are installed on it here, before
            # the split writer reads them.
            self._set_manifest(Path(dl_manager.manual_dir) / MANIFEST_NAME)
            features, meta = self._schema()
            self.info._features = features  # pylint: disable=protected-access
            self.info._metadata = meta  # pylint: disable=protected-access
        return super()._download_and_prepare(dl_manager, download_config)

    def _split_generators(self, dl_manager):
        m = self._manifest
        twice = sorted(i for i, n in collections.Counter(c.id for c in m.clips).items() if n > 1)
        if twice:
            raise ValueError(f"{self._where}: clip ids listed more than once: {twice[:10]}")
        stray = sorted({c.split for c in m.clips} - set(SPLITS))
        if stray:
            raise ValueError(f"{self._where}: splits {stray} are not among {SPLITS}")
        by_split = {s: sorted((c for c in m.clips if c.split == s), key=lambda c: c.id) for s in SPLITS}
        # A split with no clips is left out: TFDS cannot write an empty split.
        return {s: self._generate_examples(clips) for s, clips in by_split.items() if clips}

    def _generate_examples(self, clips):
        features = self._selected_features()
        described = set(self._manifest.features)
        for index, clip in enumerate(clips):
            unknown = sorted(set(clip.files) - described)
            if unknown:
                raise ValueError(f"{self._where}: clip {clip.id!r} lists files for features {unknown} "
                                 f"that the manifest does not describe")
            kept = dataclasses.replace(clip, files={k: f for k, f in clip.files.items() if k in features})
            try:
                example = schema.clip_example(kept, features, self._manifest.emotions, self._export_dir)
            except (ValueError, FileNotFoundError) as e:
                raise type(e)(f"{self._where}: {e}") from e
            # Integer keys + disable_shuffling: TFDS writes in key order, so index i is the i-th id.
            yield index, example
