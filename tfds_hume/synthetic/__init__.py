"""The built-in synthetic reaction-video set: seeded, deterministic, with planted recoverable signal.

    generate(root, *, layout="muse" | "abaw5", clips_per_split=8, seed=0, faults=False,
             emotions=HUME_EMOTIONS, frame_size=(96, 96), duration_range=(2.0, 6.0), progress=True) -> root
    sample_labels(n, rng, emotions=HUME_EMOTIONS) -> float32[n, E]          written labels
    sample_intensities(n, rng, emotions=HUME_EMOTIONS) -> (true, written)   both float32[n, E]
    plan_clips(clips_per_split, *, seed, faults, emotions, duration_range) -> [ClipPlan]
        every clip's id, split, true and written intensities, fps, frame count, without writing
        anything (e.g. to score a model against the noise-free truth, test split included)

Layouts written (IDs are 5-digit numbers, bracketed in every CSV as `[00001]`, bare in file names):
  muse    labels.csv     File_ID,<emotions>          every clip; test rows empty (labels private)
          partition.csv  File_ID,Partition           train / devel / test
          raw/mp4/<id>.mp4
          feats/FAUs/<id>.csv      File_ID,timestamp,AU01_r..AU43_r   (20 AU intensities, 0-5)
          feats/VGGFace2/<id>.csv  File_ID,timestamp,vgg_00..vgg_31   (the real ones have 512 dims)
            feature rows: one every 100 ms (FEATURE_HOP_MS), `timestamp` in integer MILLISECONDS
  abaw5   data_info.csv  File_ID,Split,<emotions>,Age,Country   Split in Train/Val/Test; Test rows
                         have empty emotion cells
          mp4/<id>.mp4   (no shipped feature CSVs, as in ABAW5)
  both    synthetic.json  generator settings and fault IDs, marking the set as synthetic
Labels are written with 4 decimals.

Media: H.264 (yuv420p, 96x96 by default) + AAC mono 16 kHz MP4s of 2-6 s; frame rates cycle through
23.976, 25, 30, 15, 29.97 and 20 fps by clip number. A drawn face moves its brows, eyes, nose and
mouth with action units derived from the clip's TRUE intensities, jitters (anxiety, fear), blushes
(adoration), brightens (amusement), sheds a tear (empathic pain), pales green (disgust); a voice
changes pitch, loudness, laughter pulsing, tremolo, bursts, breathiness and harshness with them.
Per-clip nuisance (face position, size, skin, hair, background, lighting, voice pitch and gain,
noise) keeps it non-trivial.
Labels: per-emotion means and stds of the paper's Table 2, density peaks at 0 and 1, emotions
correlated through a Gaussian copula. The label files hold WRITTEN labels, noisy versions of the
truth (labels.py; about 0.75 Pearson per emotion), so no model can reach Pearson 1.

faults=True adds three train clips, listed in the label files like the others (FAULT_IDS):
  99997 truncated: the MP4 cut to half its bytes (no moov index, does not open)
  99998 empty: a zero-byte MP4
  99999 no_audio: a valid MP4 with a video stream only
"""
from tfds_hume.synthetic.dataset import (
    DURATION_RANGE,
    FAULT_IDS,
    FRAME_RATES,
    FRAME_SIZE,
    LAYOUTS,
    ClipPlan,
    clip_expression,
    generate,
    plan_clips,
)
from tfds_hume.synthetic.features import FEATURE_HOP_MS
from tfds_hume.synthetic.labels import TABLE2_MEAN_STD, sample_intensities, sample_labels

__all__ = [
    "DURATION_RANGE", "FAULT_IDS", "FEATURE_HOP_MS", "FRAME_RATES", "FRAME_SIZE", "LAYOUTS", "TABLE2_MEAN_STD",
    "ClipPlan", "clip_expression", "generate", "plan_clips", "sample_intensities", "sample_labels",
]
