"""The PyTorch side: decode media, run every extractor once per video, cache the outputs, export to TFDS.

Never imports jax.

  media.py        PyAV decoding by decoded timestamps: probe, 32 equidistant frames, 16 kHz mono audio
                  and its overlapping windows; `MediaError` for broken files
  cache.py        one output per (extractor settings, clip) under <cache>/features/<name>-<hash8>/
  extractors/     the `Extractor` interface and runner (base.py); pixels.py, shipped.py
  configs.py      which extractors a `--config` runs (demo, shipped)
  pipeline.py     records -> extractors -> manifest.json + summary.json -> `tfds_hume.build`
  cli.py          `python -m extract`
"""
