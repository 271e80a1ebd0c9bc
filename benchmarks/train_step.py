"""ViPER train step: the Flax NNX model under jax.jit against the Hugging Face PerceiverModel in PyTorch.

Both sides do the same work on the same batch: forward in training mode (attention dropout 0.1), MSE
over the outputs, backward, AdamW (weight decay 0.01). JAX runs the trainer's jitted step
(`eri_jax.training.step.make_train_step`, a pure function of (state, batch)) with the state donated;
PyTorch runs eager with ``torch.optim.AdamW``. Rounds alternate between the two so that drifting load on
a shared machine hits both alike; the medians are compared.

    python benchmarks/train_step.py --size cpu --precision float32 --steps 5 --rounds 3
    python benchmarks/train_step.py --size paper --precision bfloat16 --skip-torch --batch-sizes 16,32,64

Threads: XLA's CPU runtime uses one thread per CPU this process may run on, so PyTorch gets as many
(``--threads N`` narrows the process's CPU affinity before JAX starts, which sets both).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZES = {
    # Real token width (V+A+T+F = 2080) and clip length, smaller latent stack: runs on a laptop CPU.
    "cpu": dict(
        model=dict(d_model=2080, num_latents=64, d_latents=256, num_self_attends_per_block=4),
        batch=16,
        tokens=32,
    ),
    # ViPER as published: HF PerceiverConfig defaults at d_model 2080 (283 M parameters).
    "paper": dict(model=dict(d_model=2080), batch=16, tokens=32),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", choices=sorted(SIZES), default="cpu")
    p.add_argument("--precision", choices=["float32", "bfloat16"], default="float32")
    p.add_argument("--steps", type=int, default=5, help="timed steps per round and framework")
    p.add_argument("--rounds", type=int, default=3, help="alternating timing rounds (median is reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation, allocator)")
    p.add_argument("--threads", type=int, default=None, help="CPUs for both frameworks (default: all visible)")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="peak for MFU (H100 bf16 dense)")
    p.add_argument("--skip-torch", action="store_true", help="time only the JAX step")
    p.add_argument("--batch-sizes", default="", metavar="B1,B2",
                   help="also time the JAX step at these batch sizes (compile time and samples/s each): the "
                        "batch that fills the device, beside the paper's 16")
    p.add_argument("--profile", type=int, default=0, metavar="STEPS",
                   help="afterwards trace this many JAX steps and print where the time goes, op by op")
    return p.parse_args(argv)


def train_flops(cfg, batch: int, tokens: int) -> float:
    """Model FLOPs of one train step: 3 x forward (backward = 2 x forward) matmul FLOPs, attention included."""
    cross_qk, cross_v = cfg.cross_channels()
    self_qk, self_v = cfg.self_channels()
    n, d = cfg.num_latents, cfg.d_latents

    def layer(q_rows, kv_rows, q_dim, kv_dim, qk, v, out, widening):
        proj = q_rows * q_dim * qk + kv_rows * kv_dim * (qk + v) + q_rows * v * out
        attention = q_rows * kv_rows * (qk + v)  # scores and weighted sum, all heads together
        mlp = 2 * q_rows * q_dim * widening * q_dim
        return 2 * (proj + attention + mlp)

    forward = layer(n, tokens, d, cfg.d_model, cross_qk, cross_v, d, cfg.cross_attention_widening_factor)
    forward += cfg.num_blocks * cfg.num_self_attends_per_block * layer(
        n, n, d, d, self_qk, self_v, d, cfg.self_attention_widening_factor
    )
    forward += layer(1, n, d, d, d, d, d, 1) + 2 * d * cfg.num_outputs
    return 3.0 * batch * forward


def jax_runner(cfg, batch, precision, seed=0):
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from eri_jax.models.viper import Viper
    from eri_jax.training.step import make_optimizer, make_train_step

    dtype = jnp.bfloat16 if precision == "bfloat16" else jnp.float32
    # The keys go in as arguments: as constants, XLA would fold the random init of all 283 M parameters at
    # compile time (minutes on a GPU machine's host: "Very slow compile", seen on an H200).
    model = nnx.jit(lambda p, d: Viper(cfg, rngs=nnx.Rngs(params=p, dropout=d), dtype=dtype))(
        jax.random.key(seed), jax.random.key(seed + 1))
    # The trainer's own step (eri_jax.training.step.update: masked MSE, AdamW with its LR in the state),
    # compiled as `python -m eri_jax.train` compiles it; on a fully labelled batch the loss is plain MSE.
    optimizer = nnx.Optimizer(model, make_optimizer("adamw", 1e-5, 0.01), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))
    del model, optimizer
    train_step = make_train_step(graphdef)

    x, y = (jnp.asarray(a) for a in batch)
    arrays = {"x": x, "labels": y, "mask": jnp.ones(y.shape[0], bool)}
    holder = {"state": state}

    def step():
        holder["state"], loss = train_step(holder["state"], arrays)
        return loss

    return step, lambda loss: float(jax.block_until_ready(loss))


def torch_runner(cfg, batch, precision, threads, seed=0):
    import torch
    from transformers.models.perceiver.modeling_perceiver import PerceiverClassificationDecoder, PerceiverModel

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    hf = cfg.to_hf()
    decoder = PerceiverClassificationDecoder(
        hf,
        num_channels=hf.d_latents,
        trainable_position_encoding_kwargs=dict(num_channels=hf.d_latents, index_dims=1),
        use_query_residual=True,
    )
    model = PerceiverModel(hf, decoder=decoder).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
    x, y = (torch.from_numpy(a).to(device) for a in batch)
    use_autocast = precision == "bfloat16"

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=use_autocast):
            logits = model(inputs=x).logits
        loss = torch.nn.functional.mse_loss(logits.float(), y)
        loss.backward()
        optimizer.step()
        return loss

    def sync(loss):
        return float(loss.detach())  # waits for the device

    return step, sync, device


def profile_ops(step, sync, steps: int, top: int = 15) -> None:
    """`--profile`: trace `steps` JAX steps (jax.profiler, Perfetto JSON) and print the ops that take the time.

    On a GPU the device's kernels are summed by name (what the GPU was busy with); on the CPU, XLA's
    thunks. Busy = summed op time per step against the step's wall time (gaps = launch/idle time).
    """
    import collections
    import glob
    import gzip
    import json
    import re
    import tempfile

    import jax

    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            start = time.perf_counter()
            time_steps(step, sync, steps)
            wall = (time.perf_counter() - start) / steps
        files = glob.glob(f"{tmp}/**/*.trace.json.gz", recursive=True)
        if not files:
            print("profile: the profiler wrote no Perfetto trace")
            return
        with gzip.open(files[0]) as f:
            trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    names = {e["pid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e.get("name") == "process_name"}
    device = {pid for pid, name in names.items() if "GPU" in name or "gpu" in name}

    def counted(e):  # device kernels where there is a device; else XLA's ops on the host (no Python frames)
        if device:
            return e.get("pid") in device
        return not e["name"].startswith(("$", "ThunkExecutor", "PjitFunction", "SlinkyThreadPool"))

    total, count = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("ph") == "X" and counted(e):
            total[e["name"]] += e.get("dur", 0) / 1e3 / steps  # ms per step
            count[e["name"]] += 1 / steps
    busy = sum(total.values())
    where = "GPU kernels" if device else "host ops"
    print(f"profile: {steps} steps, {1e3 * wall:.1f} ms/step wall, {where} sum to {busy:.1f} ms/step "
          f"({len(total)} distinct)")
    kinds, kind_count = collections.Counter(), collections.Counter()
    for name, ms in total.items():  # "loop_add_fusion.12" -> "loop_add_fusion": what kind of work it is
        kind = re.sub(r"([._]\d+)+$", "", name)
        kinds[kind] += ms
        kind_count[kind] += count[name]
    for title, table, n in (("by kind", kinds, kind_count), ("by op", total, count)):
        print(f" {title}:")
        for name, ms in table.most_common(top):
            print(f"  {ms:8.3f} ms/step  {100 * ms / busy:5.1f}%  x{n[name]:<5.0f} {name[:100]}")


def time_steps(step, sync, steps: int) -> float:
    start = time.perf_counter()
    loss = None
    for _ in range(steps):
        loss = step()
    sync(loss)
    return time.perf_counter() - start


def main(argv=None):
    args = parse_args(argv)
    visible = sorted(os.sched_getaffinity(0))
    if args.threads is not None:
        if not 1 <= args.threads <= len(visible):
            sys.exit(f"--threads must be between 1 and {len(visible)}")
        os.sched_setaffinity(0, visible[: args.threads])  # before JAX starts: XLA sizes its pool from this
    threads = len(os.sched_getaffinity(0))

    import jax
    import numpy as np

    from eri_jax.models.viper import ViperConfig, count_params

    size = SIZES[args.size]
    cfg = ViperConfig(**size["model"])
    rng = np.random.default_rng(0)
    batch = (
        rng.normal(size=(size["batch"], size["tokens"], cfg.d_model)).astype(np.float32),
        rng.uniform(size=(size["batch"], cfg.num_outputs)).astype(np.float32),
    )
    backend = jax.default_backend()
    print(f"size={args.size} precision={args.precision} batch={size['batch']} tokens={size['tokens']}")
    print(f"config={cfg}")
    print(f"jax {jax.__version__} on {backend} ({jax.devices()[0].device_kind}); XLA CPU threads: {threads}")

    torch_device = None
    jax_step, jax_sync = jax_runner(cfg, batch, args.precision)
    runners = {"jax": (jax_step, jax_sync)}
    if not args.skip_torch:
        import torch

        torch_step, torch_sync, torch_device = torch_runner(cfg, batch, args.precision, threads)
        runners["torch"] = (torch_step, torch_sync)
        print(f"torch {torch.__version__} on {torch_device}; intra-op threads: {torch.get_num_threads()}")
    from flax import nnx

    from eri_jax.models.viper import Viper

    params = count_params(nnx.eval_shape(lambda: Viper(cfg, rngs=nnx.Rngs(0))))
    flops = train_flops(cfg, size["batch"], size["tokens"])
    print(f"parameters: {params:,}; model FLOPs per train step: {flops / 1e9:.2f} GFLOP")

    for name, (step, sync) in runners.items():
        start = time.perf_counter()
        time_steps(step, sync, args.warmup)
        seconds = time.perf_counter() - start
        print(f"{name}: warm-up ({args.warmup} steps, compilation included) {seconds:.1f} s")

    rates: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(args.rounds):
        for name, (step, sync) in runners.items():
            seconds = time_steps(step, sync, args.steps)
            rates[name].append(args.steps * size["batch"] / seconds)
        print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.1f} samples/s" for n, v in rates.items()))

    median = {name: statistics.median(v) for name, v in rates.items()}
    for name, value in median.items():
        tflops = value / size["batch"] * flops / 1e12
        ms = 1e3 * size["batch"] / value
        line = f"{name:5s}: {value:8.1f} samples/s  {ms:8.1f} ms/step  {tflops:.3f} TFLOP/s"
        on_gpu = backend == "gpu" if name == "jax" else torch_device == "cuda"
        if on_gpu:
            line += f"  MFU {100 * tflops / args.peak_tflops:.1f}% of {args.peak_tflops:g} TFLOP/s"
        print(line)
    if "torch" in median:
        print(f"ratio jax/torch: {median['jax'] / median['torch']:.2f}x")
    if args.batch_sizes:
        batch_size_sweep(cfg, size["tokens"], args, backend)
    if args.profile:
        profile_ops(jax_step, jax_sync, args.profile)


def batch_size_sweep(cfg, tokens: int, args, backend: str) -> None:
    """JAX only: per batch size the first step's time (compilation, mostly) and the median samples/s."""
    import numpy as np

    print("batch  first step (compile) s  samples/s  ms/step  TFLOP/s" + ("  MFU" if backend == "gpu" else ""))
    for b in (int(x) for x in args.batch_sizes.split(",") if x.strip()):
        rng = np.random.default_rng(0)
        batch = (rng.normal(size=(b, tokens, cfg.d_model)).astype(np.float32),
                 rng.uniform(size=(b, cfg.num_outputs)).astype(np.float32))
        step, sync = jax_runner(cfg, batch, args.precision)
        first = time_steps(step, sync, 1)
        if args.warmup > 1:
            time_steps(step, sync, args.warmup - 1)
        rate = statistics.median(args.steps * b / time_steps(step, sync, args.steps) for _ in range(args.rounds))
        tflops = rate / b * train_flops(cfg, b, tokens) / 1e12
        mfu = f"  {100 * tflops / args.peak_tflops:.1f}%" if backend == "gpu" else ""
        print(f"{b:5d}  {first:22.1f}  {rate:9.1f}  {1e3 * b / rate:7.1f}  {tflops:7.3f}{mfu}")


if __name__ == "__main__":
    main()
