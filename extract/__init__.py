"""The PyTorch side: decode media, run every extractor once per video, cache the outputs, export to TFDS.

Never imports jax.

  media.py        PyAV decoding by decoded timestamps: probe, 32 equidistant frames, 16 kHz mono audio
                  and its overlapping windows; `MediaError` for broken files
  faces.py        the main face per frame (OpenCV Haar cascade), whole frame where none is found
  cache.py        one output per (extractor settings, clip) under <cache>/features/<dataset>/<name>-<hash8>/
  extractors/     the `Extractor` interface and runner (base.py); pixels, shipped CSVs, and the model
                  extractors vit, wavlm, clip_text, vllava, vllava_query, llava
  models/         model loading, miniature random-weight models, batched encoders and MLLM generation
  configs.py      which extractors a `--config` runs (demo, shipped, full)
  pipeline.py     records -> extractors -> manifest.json + summary.json -> `tfds_hume.build`
  ray_pipeline.py the same extractors on Ray Data (`--ray`): CPU decoding tasks, model actor pools
  cli.py          `python -m extract`
"""
