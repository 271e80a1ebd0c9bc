"""Extraction throughput of the multimodal-LLM bridge: batched generation vs a batch-1 loop, in one run.

    python benchmarks/extract_throughput.py --size tiny                  # CPU, miniature models (seconds)
    python benchmarks/extract_throughput.py --size full --device cuda    # 7B architectures, bf16, SDPA

`--size full` builds Video-LLaVA-7B and LLaVA-1.5-7B with their real architectures (configs written out
below) and random weights, directly on the GPU: no download, same FLOPs and memory traffic as the real
checkpoints. Token ids of <image>/<video>/<pad> are remapped to the locally built tokenizer (a stand-in
for the 32k LLaMA vocabulary; prompts tokenize to a similar length, and the 2,056 or 576 media
placeholders dominate anyway). Every description is exactly `--new-tokens` long (min = max new tokens),
so both paths do the same work. Timings include preprocessing (image processor on the CPU), as in
extraction, and the Video-LLaVA path also computes the pooled hidden state, as extraction does.
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
    build_tiny,
    describe_images,
    generate_descriptions,
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


def run(kind: str, model, proc, args) -> list[dict]:
    rng = np.random.default_rng(0)
    if kind == "vllava":
        items = [rng.integers(0, 256, (8, 240, 320, 3), dtype=np.uint8) for _ in range(args.vllava_batch)]
        batch = args.vllava_batch

        def call(xs, bs):
            return generate_descriptions(model, proc, xs, VIDEO_PROMPTS[1], max_new_tokens=args.new_tokens,
                                         min_new_tokens=args.new_tokens, batch_size=bs, pooled=True)
    else:
        frames = rng.integers(0, 256, (args.llava_batch, 240, 320, 3), dtype=np.uint8)
        items = list(frames)
        batch = args.llava_batch

        def call(xs, bs):
            return describe_images(model, proc, xs, FRAME_PROMPT, max_new_tokens=args.new_tokens,
                                   min_new_tokens=args.new_tokens, batch_size=bs)

    call(items, batch)  # warm-up of both paths: kernels, allocator, lazy init
    call(items[:1], 1)
    rows = []
    for path, xs, bs in (("batched", items * args.repeats, batch), ("batch-1 loop", items[:args.single], 1)):
        _sync(args.device)
        t0 = time.perf_counter()
        texts, _ = call(xs, bs)
        _sync(args.device)
        seconds = time.perf_counter() - t0
        rows.append(dict(model=kind, path=path, batch=bs, items=len(xs), seconds=round(seconds, 3),
                         per_s=round(len(xs) / seconds, 3), example=texts[0][:40]))
    rows[0]["speedup"] = round(rows[0]["per_s"] / rows[1]["per_s"], 2)
    t0 = time.perf_counter()
    proc(items, [FRAME_PROMPT] * batch)
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
    ap.add_argument("--repeats", type=int, default=2, help="batched path runs over repeats x batch items")
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
    print("| model | path | batch | items | seconds | descriptions/s | batched / batch-1 | preprocess s/batch |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['path']} | {r['batch']} | {r['items']} | {r['seconds']} | {r['per_s']} | "
              f"{r.get('speedup', '')} | {r.get('preprocess_s_per_batch', '')} |")
    result = dict(size=size, device=device, new_tokens=args.new_tokens, rows=rows)
    print("\n" + json.dumps(result))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
