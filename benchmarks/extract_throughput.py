"""Extraction throughput of the multimodal-LLM bridge: the generation paths side by side with a batch-1 loop.

    python benchmarks/extract_throughput.py --size tiny                  # CPU, miniature models (seconds)
    python benchmarks/extract_throughput.py --size full --device cuda    # 7B architectures, bf16, SDPA

`--size full` builds Video-LLaVA-7B and LLaVA-1.5-7B with their real architectures (configs written out
below) and random weights, directly on the GPU: no download, same FLOPs and memory traffic as the real
checkpoints. Token ids of <image>/<video>/<pad> are remapped to the locally built tokenizer (a stand-in
for the 32k LLaMA vocabulary; prompts tokenize to a similar length, and the 2,056 or 576 media
placeholders dominate anyway). Every description is exactly `--new-tokens` long (min = max new tokens),
so every path does the same work. Timings include preprocessing (image processor on the CPU), as in
extraction. Video-LLaVA answers both paper prompts for every clip and computes the pooled hidden state,
as the `vllava` extractor does; LLaVA describes single frames.

Paths (`extract.models.GenerationOptions`): `plain` (dynamic cache, one call per prompt, as before issue
16), the speed-ups without compilation (static KV cache, next batch preprocessed on a thread, length
order, one vision pass for both prompts), and on CUDA the same with the decode step compiled (opt-in:
GenerationOptions(compile=True)).
Each is warmed up first (a compiled path on its timed shapes; its warm-up time is printed). `same text
as plain`: the share of answers identical to the plain path's (bfloat16 kernels may differ; on the CPU in
float32 the tests require identical tokens). Then a batch-1 loop of the plain path, for the ratio.
Random weights: the descriptions are gibberish; only the speed is measured.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from extract.models import (  # noqa: E402
    FRAME_PROMPT,
    VIDEO_PROMPTS,
    ChatProcessor,
    GenerationOptions,
    build_tiny,
    describe_images,
    generate_descriptions,
    generate_for_prompts,
    load_model,
)
from extract.models.tiny_tokenizers import llm_tokenizer  # noqa: E402

# Published architectures (the checkpoints' config.json, minus bookkeeping fields).
_CLIP_L14 = dict(model_type="clip_vision_model", hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                 num_attention_heads=16, patch_size=14, projection_dim=768, hidden_act="quick_gelu")
_VICUNA_7B = dict(model_type="llama", vocab_size=32064, hidden_size=4096, intermediate_size=11008,
                  num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                  max_position_embeddings=4096, rms_norm_eps=1e-5, hidden_act="silu")
FULL = {
    "vllava": dict(vision_config=dict(_CLIP_L14, image_size=224), text_config=_VICUNA_7B,
                   projector_hidden_act="gelu", vision_feature_layer=-2, vision_feature_select_strategy="default"),
    "llava": dict(vision_config=dict(_CLIP_L14, image_size=336), text_config=_VICUNA_7B,
                  projector_hidden_act="gelu", vision_feature_layer=-2, vision_feature_select_strategy="default"),
}


def build_full(kind: str, device: str, layers: int | None = None):
    """Random-weight 7B model in bfloat16 on `device`, with a ChatProcessor over the local tokenizer.

    `layers` cuts both towers to that depth (a CPU smoke test of the full widths and media sizes).
    """
    from transformers import (
        CLIPImageProcessor,
        LlavaConfig,
        LlavaForConditionalGeneration,
        VideoLlavaConfig,
        VideoLlavaForConditionalGeneration,
        VideoLlavaImageProcessor,
    )

    tok = llm_tokenizer()
    ids = dict(image_token_index=tok.convert_tokens_to_ids("<image>"), pad_token_id=tok.pad_token_id)
    arch = FULL[kind]
    if layers:
        arch = dict(arch, text_config=dict(arch["text_config"], num_hidden_layers=layers),
                    vision_config=dict(arch["vision_config"], num_hidden_layers=max(layers, 2)))
    if kind == "vllava":
        config = VideoLlavaConfig(**arch, video_token_index=tok.convert_tokens_to_ids("<video>"), **ids)
        cls, image_proc = VideoLlavaForConditionalGeneration, VideoLlavaImageProcessor()
    else:
        config = LlavaConfig(**arch, **ids)
        cls = LlavaForConditionalGeneration
        image_proc = CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
    with torch.device(device):  # initialise on the GPU: a 7B fp32 init on the CPU takes minutes
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        model = cls._from_config(config, dtype=dtype, attn_implementation="sdpa")
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    return model.eval(), ChatProcessor.for_model(model.config, tok, image_proc)


def build_small(kind: str, root: Path):
    """The miniature model, through the same load_model path as extraction."""
    return load_model(kind, build_tiny(kind, root / kind), device="cpu")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def paths(device: str) -> dict[str, GenerationOptions]:
    """The generation paths compared: the plain one (before issue 16), then the speed-ups added up."""
    out = {"plain": GenerationOptions.plain(),
           "static+prefetch+sort+encode-once": GenerationOptions(compile=False)}
    if device.startswith("cuda"):
        out["+ compiled decode (opt-in)"] = GenerationOptions(compile=True)
    return out


def run(kind: str, model, proc, args) -> list[dict]:
    """Video-LLaVA: every clip with both prompts, as the `vllava` extractor does; LLaVA: one prompt per frame."""
    rng = np.random.default_rng(0)
    n = args.vllava_batch if kind == "vllava" else args.llava_batch
    shape = (8, 240, 320, 3) if kind == "vllava" else (240, 320, 3)
    items = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]
    prompts = list(VIDEO_PROMPTS) if kind == "vllava" else [FRAME_PROMPT]
    unit = "generations" if kind == "vllava" else "frames"

    def call(xs, bs, options, new_tokens=args.new_tokens):
        common = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, batch_size=bs, pooled=kind == "vllava",
                      options=options)
        if options == GenerationOptions.plain():  # as the extractors did before: one full call per prompt
            generate = generate_descriptions if kind == "vllava" else describe_images
            return [t for p in prompts for t in generate(model, proc, xs, p, **common)[0]]
        return [t for texts, _ in generate_for_prompts(model, proc, xs, prompts, **common) for t in texts]

    def timed(xs, bs, options):
        _sync(args.device)
        t0 = time.perf_counter()
        texts = call(xs, bs, options)
        _sync(args.device)
        return texts, time.perf_counter() - t0

    rows, reference = [], None
    for name, options in paths(args.device).items():
        row = dict(model=kind, path=name, batch=n, items=n * args.repeats * len(prompts), unit=unit)
        try:
            t0 = time.perf_counter()
            # Warm-up: kernels and allocator; a compiled path needs the very shapes it is timed on.
            call(items, n, options, args.new_tokens if options.compile else 2)
            row["warmup_s"] = round(time.perf_counter() - t0, 2)
            texts, seconds = timed(items * args.repeats, n, options)
        except Exception as e:  # noqa: BLE001 -- one failing path must not cost the other figures
            rows.append(dict(row, error=f"{type(e).__name__}: {str(e)[:300]}"))
            continue
        row.update(seconds=round(seconds, 3), per_s=round(row["items"] / seconds, 3))
        if reference is None:
            reference = texts
        row["same_text_as_plain"] = round(float(np.mean([a == b for a, b in zip(texts, reference)])), 3)
        rows.append(row)
    call(items[:1], 1, GenerationOptions.plain(), 2)
    _, seconds = timed(items[:args.single], 1, GenerationOptions.plain())
    loop = dict(model=kind, path="batch-1 loop (plain)", batch=1, items=args.single * len(prompts), unit=unit,
                seconds=round(seconds, 3), per_s=round(args.single * len(prompts) / seconds, 3))
    for r in rows:
        if "per_s" in r:
            r["vs_batch1"] = round(r["per_s"] / loop["per_s"], 2)
    rows.append(loop)
    t0 = time.perf_counter()
    proc.media_inputs(items)
    rows[0]["preprocess_s_per_batch"] = round(time.perf_counter() - t0, 3)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["tiny", "full"], default="tiny")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--models", nargs="+", choices=["vllava", "llava"], default=["vllava", "llava"])
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--vllava-batch", type=int, default=None, help="videos per batch (full: 32, tiny: 8)")
    ap.add_argument("--llava-batch", type=int, default=None, help="frames per batch (full: 128, tiny: 32)")
    ap.add_argument("--repeats", type=int, default=1, help="batched paths run over repeats x batch items")
    ap.add_argument("--single", type=int, default=4, help="items in the batch-1 loop")
    ap.add_argument("--layers", type=int, default=None,
                    help="full widths but only this many layers: a CPU smoke test, not a benchmark")
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args(argv)
    full = args.size == "full"
    if full and not args.device.startswith("cuda") and not args.layers:
        ap.error("--size full needs a CUDA GPU (two 7B models in bfloat16); use --size tiny on a CPU")
    args.vllava_batch = args.vllava_batch or (32 if full else 8)
    args.llava_batch = args.llava_batch or (128 if full else 32)
    torch.manual_seed(0)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.models:
            model, proc = build_full(kind, args.device, args.layers) if full else build_small(kind, Path(tmp))
            rows += run(kind, model, proc, args)
            del model
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()

    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU ({os.cpu_count()} cores)"
    size = args.size + (f" ({args.layers} layers: smoke test, not a benchmark)" if args.layers else "")
    print(f"\n{size} models, random weights, {args.new_tokens} new tokens each, {device}, torch "
          f"{torch.__version__}\n")
    print("| model | path | batch | answers | seconds | answers/s | / batch-1 loop | same text as plain | warm-up s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['model']} | {r['path']} | {r['batch']} | | | failed: {r['error']} | | | |")
            continue
        print(f"| {r['model']} | {r['path']} | {r['batch']} | {r['items']} | {r['seconds']} | {r['per_s']} | "
              f"{r.get('vs_batch1', '')} | {r.get('same_text_as_plain', '')} | {r.get('warmup_s', '')} |")
    for kind in args.models:
        first = next(r for r in rows if r["model"] == kind)
        print(f"{kind}: preprocessing one batch on the CPU takes {first.get('preprocess_s_per_batch')} s")
    result = dict(size=size, device=device, new_tokens=args.new_tokens, rows=rows)
    print("\n" + json.dumps(result))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
