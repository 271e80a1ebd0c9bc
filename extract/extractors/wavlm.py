"""`wavlm`: WavLM x-vector of each of 32 overlapping audio windows (the paper's audio token).

Per clip: the audio (the clip's own .wav if the layout has one, else the video's audio track) decoded
to 16 kHz mono (mean of the channels), cut into `num_windows` windows with 50 % overlap that exactly
tile the video's duration (`extract.media.audio_windows`), each -> WavLMForXVector's raw x-vector:
`wavlm` float32[num_windows, 512 | d].

- frame_mask[i] is False where window i is not at least half covered by audio (audio shorter than
  the video, or starting late); such rows are not computed and hold zeros, never passed off as data.
- No audio track (or no window with audio) -> the feature is Missing for the clip, never zeros.
- Windows shorter than the model's receptive field cannot give an x-vector (its statistics pooling
  needs at least two frames after the TDNN layers: about 0.33 s for wavlm-base-plus-sv, so clips
  under about 5.4 s at 32 windows). Such windows are widened to that length around their centres
  (`audio_windows(min_samples=...)`): they overlap more than 50 %, each still centred on its part of
  the clip, rather than dropping the audio of every short clip.

Both the x-vector width and that shortest window come from the resolved model's config
(`ModelChoice.config`): the rule lives here, with the WavLM extractor, not in the generic resolver.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from extract.errors import MediaError, NoAudioError
from extract.extractors.base import FeatureValue, Media, Missing, Output
from extract.extractors.model_pool import ModelExtractor, ModelPool
from extract.media import audio_windows, load_audio
from tfds_hume.manifest import FeatureSpec
from tfds_hume.records import ClipRecord

SAMPLE_RATE = 16000


def xvector_dim(config) -> int:
    """Width of WavLMForXVector's x-vector (512 for wavlm-base-plus-sv)."""
    return int(config.xvector_output_dim)


def min_window_samples(config) -> int:
    """Fewest input samples for which WavLMForXVector yields >= 2 TDNN frames (its std pooling needs 2)."""
    need = 2 + sum(d * (k - 1) for k, d in zip(config.tdnn_kernel, config.tdnn_dilation))
    for k, s in reversed(list(zip(config.conv_kernel, config.conv_stride))):
        need = (need - 1) * s + k  # inverse of L_out = floor((L_in - k) / s) + 1
    return int(need)


class WavlmExtractor(ModelExtractor):
    """`wavlm` [num_windows, xvector dim] with a per-window mask; Missing without audio."""

    name = "wavlm"
    kinds = ("wavlm",)
    version = 2

    def __init__(self, pool: ModelPool, *, num_windows: int = 32, overlap: float = 0.5,
                 windows_per_batch: int = 64):
        super().__init__(pool)
        if num_windows < 1 or not 0.0 <= overlap < 1.0 or windows_per_batch < 1:
            raise ValueError(f"wavlm: bad settings num_windows={num_windows}, overlap={overlap}, "
                             f"windows_per_batch={windows_per_batch}")
        self.num_windows, self.overlap = int(num_windows), float(overlap)
        self.windows_per_batch = int(windows_per_batch)
        self.batch_size = max(1, self.windows_per_batch // self.num_windows)

    def own_settings(self) -> dict[str, Any]:
        return {"num_windows": self.num_windows, "overlap": self.overlap, "sample_rate": SAMPLE_RATE,
                "mono": "mean-of-channels", "windows": "tile-video-duration-widened-to-min",
                "mask": "half-covered",
                "output": "xvector-raw"}

    def specs(self) -> dict[str, FeatureSpec]:
        return {"wavlm": self.spec("frame", dim=xvector_dim(self.pool.choice("wavlm").config),
                                   num_frames=self.num_windows)}

    def prepare(self, clip: ClipRecord, media: Media) -> Any:
        if clip.video is None:
            raise MediaError(None, f"clip {clip.id} has no video file to align its audio to")
        info = media.probe(clip.video)
        source = clip.audio or clip.video
        try:
            track = load_audio(source, SAMPLE_RATE)
        except NoAudioError as e:
            return Missing(f"{e}")
        start = track.start if source == clip.video else 0.0
        need = min_window_samples(self.pool.choice("wavlm").config)
        w = audio_windows(track.wave, SAMPLE_RATE, self.num_windows, self.overlap, duration=info.duration,
                          start=start, min_samples=need)
        if not w.mask.any():
            return Missing(f"{source}: no audio window is at least half covered by audio "
                           f"({track.duration:.2f} s of audio from {start:.2f} s, video {info.duration:.2f} s)")
        if not w.mask.all():
            media.note(clip.id, f"wavlm: {int((~w.mask).sum())} of {self.num_windows} audio windows have no "
                                f"audio (masked)")
        return w

    def compute(self, prepared: Sequence[Any]) -> list[Output]:
        from extract.models import wavlm_xvector  # deferred: extract.models imports torch and transformers

        model, processor = self.model("wavlm")
        dim = xvector_dim(self.pool.choice("wavlm").config)
        out = []
        # One call per clip: a clip's windows share one length, so nothing is padded (padding would
        # depend on which clips share a batch).
        for w in prepared:
            if isinstance(w, Missing):
                out.append({"wavlm": w})
                continue
            value = np.zeros((self.num_windows, dim), np.float32)
            value[w.mask] = wavlm_xvector(model, processor, w.windows[w.mask], SAMPLE_RATE,
                                          batch_size=self.windows_per_batch)
            out.append({"wavlm": FeatureValue(value, w.mask.copy())})
        return out
