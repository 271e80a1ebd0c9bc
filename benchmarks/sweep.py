"""Vmapped probe sweep against the same runs one after another, side by side in one process.

    python benchmarks/sweep.py --size cpu     # Hume-sized set (15,806 x 4096), 1 epoch per path
    python benchmarks/sweep.py --size gpu     # + the full Table 4 sweep: 21 runs x 50 epochs
    python benchmarks/sweep.py --size cpu --dim 27 --hidden 64    # a demo-sized probe (FAU features)

Both paths use the same engine (`eri_jax.sweep.engine`): whole epochs as one `lax.scan` on the device,
one compiled program per mode reused by every run. On the CPU the vmapped sweep trains the runs of each
seed as one wide probe (they share the batches; `eri_jax.sweep.stacked`); on a GPU it is a plain vmap
(`EngineConfig.stack_seeds`, default: whichever was faster there). Data: a synthetic set of Hume-Reaction's train/dev
sizes with a planted linear signal (labels = sigmoid of a random projection plus noise), so dev
Pearson shows the runs learn. Runs: the Table 4 grid, 7 activations x 3 seeds (lr 1e-4).

Printed:
  A  full sweep from host arrays, wall time including compilation and the host->device copy
     (`--epochs`; the GPU target is <= 20 s for 50 epochs)
  B  vmapped sweep on pre-staged (device-resident) arrays, compiled, `--ratio-epochs` epochs
  C  the same from host arrays (copy included): the input path's overhead over B (target <= 10 %)
     (B, C and D alternate `--repeats` rounds; the fastest of each is printed, and each round's D / B)
  B' (`--flat-check`) the vmapped sweep in the other layout (plain vmap where B stacks by seed, stacked
     where B is a plain vmap), after an untimed warm-up epoch
  D  the runs one after another (un-vmapped engine, compiled once, reused), `--ratio-epochs` each
  E  (`--step-loop`, on for --size gpu) the runs one after another as `eri_jax.train` trains one: a jitted
     step per batch, batches gathered on the host, dev predicted each epoch; `--loop-epochs` each
  ratios D / B, D / B' (with --flat-check) and E / B (CPU target >= 1.2x, GPU target >= 10x)

`--kernels` prints instead what one training step spends per run on its first layer (the probe's other
parts are small), one run's arrays against 7 runs stacked as the vmapped sweep holds them
(`eri_jax.sweep.stacked`): the forward GEMM with the kernel as `nnx.Linear` stores it ([D,H], x @ W) and
transposed ([H,D], W^T @ x^T), and the AdamW update of the kernel (optax, as the engine runs it).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from eri_jax.models.probe import ACTIVATION_NAMES, activation_index
from eri_jax.sweep import engine as eng

SIZES = {
    "cpu": dict(epochs=1, ratio_epochs=1, input_check=False, repeats=1, step_loop=False),
    "gpu": dict(epochs=50, ratio_epochs=3, input_check=True, repeats=3, step_loop=True),
}


def planted_set(n: int, dim: int, emotions: int, rng: np.random.Generator, proj: np.ndarray,
                chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """float32 features [n, dim] ~ N(0, 1) and labels sigmoid(2 x.proj / sqrt(dim) + 0.5 noise) in (0, 1)."""
    x = np.empty((n, dim), np.float32)
    y = np.empty((n, emotions), np.float32)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        x[s:e] = rng.standard_normal((e - s, dim), dtype=np.float32)
        z = 2.0 * (x[s:e] @ proj) / np.sqrt(dim) + 0.5 * rng.standard_normal((e - s, emotions))
        y[s:e] = 1.0 / (1.0 + np.exp(-z))
    return x, y


def block(tree):
    jax.block_until_ready(tree)
    return tree


def vmapped(engine, runs, train, dev, epochs):
    carry = engine.init([s for s, _, _ in runs], [lr for _, lr, _ in runs], [a for _, _, a in runs])
    for e in range(epochs):
        carry, m = engine.epoch(carry, train, dev, e)
    return block((carry.best_score, engine.predict_best(carry, dev)))


def sequential(engine, runs, train, dev, epochs):
    scores = []
    for seed, lr, act in runs:
        carry = engine.init(seed, lr, act, vmapped=False)
        for e in range(epochs):
            carry, m = engine.epoch(carry, train, dev, e, vmapped=False)
        scores.append(block((carry.best_score, engine.predict_best(carry, dev, vmapped=False)))[0])
    return np.asarray(scores)


def step_loop(engine, runs, host_train, host_dev, epochs, *, warmup_only=False):
    """E (module docstring): per-step dispatch from the host, as `eri_jax.train` trains a run; dev mean Pearson
    per run."""
    from eri_jax.evaluation.metrics import mean_pearson
    from eri_jax.training.step import make_predict, make_train_step

    step, predict = make_train_step(engine.graphdef), make_predict(engine.graphdef)
    n, b, eb = host_train.size, engine.cfg.batch_size, engine.cfg.eval_batch_size
    steps = -(-n // b)
    dev_idx = np.minimum(np.arange(-(-host_dev.size // eb) * eb), host_dev.size - 1).reshape(-1, eb)
    scores = []
    for seed, lr, act in runs:
        state = engine.init(seed, lr, act, vmapped=False).state
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            perm = rng.permutation(n)
            order = np.concatenate([perm, np.zeros(steps * b - n, perm.dtype)]).reshape(steps, b)
            for s in range(min(2, steps) if warmup_only else steps):
                mask = np.arange(s * b, (s + 1) * b) < n
                batch = dict(x=host_train.x[order[s]], labels=host_train.labels[order[s]], mask=mask)
                state, _ = step(state, batch)
            pred = np.concatenate([np.asarray(predict(state, dict(x=host_dev.x[i]))) for i in dev_idx])
            scores.append(mean_pearson(pred[:host_dev.size], host_dev.labels))
    return np.asarray(scores)


def kernels(dim: int, hidden: int, batch: int, runs: int = 7, steps: int = 20, repeats: int = 5) -> None:
    """`--kernels` (module docstring): ms per run and step, fastest of `repeats` alternating rounds."""
    rng = np.random.default_rng(0)
    xs = jnp.asarray(rng.standard_normal((steps, batch, dim), dtype=np.float32))
    tx = optax.adamw(1e-4, weight_decay=0.01)

    def forward(f):
        return jax.jit(lambda w, xs: jax.lax.scan(lambda c, x: (c + f(x, w).sum(), None), 0.0, xs)[0])

    def adamw(shape):
        def step(state, x):  # a gradient-sized update from the batch: the optimizer streams every array
            p, opt = state
            u, opt = tx.update(p * x[0, 0], opt, p)
            return (optax.apply_updates(p, u), opt), None

        f = jax.jit(lambda s, xs: jax.lax.scan(step, s, xs)[0], donate_argnums=0)
        p = jnp.full(shape, 0.01, jnp.float32)
        return f, (p, tx.init(p))

    cases = {  # name: (function, state, runs)
        "forward, one run, x @ W [D,H] (nnx.Linear)": (forward(lambda x, w: x @ w), jnp.ones((dim, hidden)), 1),
        "forward, one run, W^T [H,D] @ x^T": (forward(lambda x, w: w @ x.T), jnp.ones((hidden, dim)), 1),
        f"forward, {runs} runs stacked, W^T [H,{runs},D]":
            (forward(lambda x, w: jnp.einsum("hmd,bd->hmb", w, x)), jnp.ones((hidden, runs, dim)), runs),
        "AdamW update, one run's kernel": (*adamw((dim, hidden)), 1),
        f"AdamW update, {runs} runs' kernels stacked": (*adamw((hidden, runs, dim)), runs),
    }
    times = {name: [] for name in cases}
    state = {name: c[1] for name, c in cases.items()}
    for r in range(repeats + 1):  # round 0 compiles
        for name, (f, _, n) in cases.items():
            t = time.perf_counter()
            out = block(f(state[name], xs))
            if isinstance(out, tuple):
                state[name] = out  # donated optimizer state: carry it on
            if r:
                times[name].append((time.perf_counter() - t) / steps / n * 1e3)
    print(f"first layer {dim} -> {hidden}, batch {batch}; ms per run and step (fastest of {repeats}):")
    for name, t in times.items():
        print(f"  {name:50s} {min(t):6.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=sorted(SIZES), default="cpu")
    p.add_argument("--samples", type=int, default=15806, help="train clips (Hume-Reaction: 15,806)")
    p.add_argument("--dev-samples", type=int, default=4657, help="dev clips (Hume-Reaction: 4,657)")
    p.add_argument("--dim", type=int, default=4096, help="feature width (Video-LLaVA hidden size: 4096)")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--epochs", type=int, default=None, help="epochs of the full sweep A (size default)")
    p.add_argument("--ratio-epochs", type=int, default=None, help="epochs per run in B, C, D (size default)")
    p.add_argument("--input-check", action=argparse.BooleanOptionalAction, default=None,
                   help="run C (on by default for --size gpu)")
    p.add_argument("--repeats", type=int, default=None, help="B, C and D alternate this often; minimum kept")
    p.add_argument("--flat-check", action="store_true", help="also time B', the sweep in the other layout")
    p.add_argument("--step-loop", action=argparse.BooleanOptionalAction, default=None,
                   help="time E, the eri_jax.train-style loop (on by default for --size gpu)")
    p.add_argument("--loop-epochs", type=int, default=1, help="epochs per run in E")
    p.add_argument("--kernels", action="store_true", help="time the first layer's GEMM and AdamW update only")
    args = p.parse_args()
    if args.kernels:
        return kernels(args.dim, args.hidden, args.batch_size)
    size = SIZES[args.size]
    epochs = args.epochs or size["epochs"]
    ratio_epochs = args.ratio_epochs or size["ratio_epochs"]
    input_check = size["input_check"] if args.input_check is None else args.input_check
    repeats = args.repeats or size["repeats"]
    run_step_loop = size["step_loop"] if args.step_loop is None else args.step_loop
    emotions = 7

    rng = np.random.default_rng(0)
    proj = rng.standard_normal((args.dim, emotions)).astype(np.float32)
    t = time.perf_counter()
    host_train = eng.SplitArrays(*planted_set(args.samples, args.dim, emotions, rng, proj))
    host_dev = eng.SplitArrays(*planted_set(args.dev_samples, args.dim, emotions, rng, proj))
    print(f"data: train {host_train.x.shape}, dev {host_dev.x.shape} float32 "
          f"({(host_train.x.nbytes + host_dev.x.nbytes) / 2**20:.0f} MiB), made in {time.perf_counter() - t:.1f} s")
    runs = [(seed, args.lr, activation_index(a)) for a in ACTIVATION_NAMES for seed in range(args.seeds)]
    devices = jax.devices()
    print(f"device: {devices[0].device_kind} x{len(devices)} ({jax.default_backend()}), jax {jax.__version__}, "
          f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}")
    print(f"runs: {len(runs)} = {len(ACTIVATION_NAMES)} activations x {args.seeds} seeds, probe "
          f"{args.dim} -> {args.hidden} -> {emotions}, batch {args.batch_size}, "
          f"{-(-args.samples // args.batch_size)} steps per epoch")

    cfg = eng.EngineConfig(batch_size=args.batch_size, eval_batch_size=1024)
    engine = eng.Engine(eng.probe_builder(args.dim, args.hidden, emotions), cfg, n_train=args.samples)
    stacking = engine.init([s for s, _, _ in runs], [lr for _, lr, _ in runs], [a for _, _, a in runs]).stacking
    print(f"vmapped program ({jax.default_backend()} default): " + (
        f"{len(stacking.groups)} seed groups x {len(stacking.groups[0])} runs, each group one wide probe"
        if stacking else "plain vmap, run by run"))

    # A: everything a user waits for, from host arrays, compilation included.
    t = time.perf_counter()
    train, dev = host_train.to_device(), host_dev.to_device()
    best, _ = vmapped(engine, runs, train, dev, epochs)
    a_s = time.perf_counter() - t
    best = np.asarray(best)
    print(f"A  full sweep, {len(runs)} runs x {epochs} epochs, from host, incl. compile: {a_s:.2f} s "
          f"(best dev mean Pearson: median {np.median(best):.3f}, min {best.min():.3f})")

    # D's program compiles first (one run, one epoch, untimed); then every run of D reuses it.
    t = time.perf_counter()
    sequential(engine, runs[:1], train, dev, 1)
    compile_s = time.perf_counter() - t

    # B, C and D alternate (`--repeats` rounds) and the fastest of each is kept: other load on a shared
    # machine only adds time, and alternating spreads its drift over all three alike.
    b_times, c_times, d_times, ratios = [], [], [], []
    for _ in range(repeats):
        t = time.perf_counter()
        vmapped(engine, runs, train, dev, ratio_epochs)
        b_times.append(time.perf_counter() - t)
        if input_check:
            t = time.perf_counter()
            vmapped(engine, runs, host_train.to_device(), host_dev.to_device(), ratio_epochs)
            c_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        sequential(engine, runs, train, dev, ratio_epochs)
        d_times.append(time.perf_counter() - t)
        ratios.append(d_times[-1] / b_times[-1])
    b_s, d_s = min(b_times), min(d_times)
    print(f"B  vmapped, pre-staged, compiled, {ratio_epochs} epoch(s): {b_s:.2f} s "
          f"({b_s / ratio_epochs / len(runs) * 1e3:.0f} ms per run-epoch; best of {repeats})")
    if input_check:
        c_s = min(c_times)
        print(f"C  vmapped, from host arrays (copy included), {ratio_epochs} epoch(s): {c_s:.2f} s "
              f"-> input path overhead {100 * (c_s / b_s - 1):+.1f} % over B (best of {repeats})")
    print(f"D  one after another, compiled (compile + 1 warm-up epoch: {compile_s:.2f} s), "
          f"{ratio_epochs} epoch(s) each: {d_s:.2f} s ({d_s / ratio_epochs / len(runs) * 1e3:.0f} ms per "
          f"run-epoch; best of {repeats})")
    if repeats > 1:
        print("   D / B per round: " + ", ".join(f"{r:.2f}x" for r in ratios))

    if args.flat_check:
        other = eng.Engine(engine.build, dataclasses.replace(cfg, stack_seeds=stacking is None), n_train=args.samples)
        t = time.perf_counter()
        vmapped(other, runs, train, dev, 1)
        warm_s = time.perf_counter() - t
        t = time.perf_counter()
        vmapped(other, runs, train, dev, ratio_epochs)
        b1_s = time.perf_counter() - t
        print(f"B' vmapped, {'stacked by seed' if stacking is None else 'plain vmap, no seed stacking'} "
              f"(compile + 1 warm-up epoch: {warm_s:.2f} s), {ratio_epochs} epoch(s): {b1_s:.2f} s "
              f"({b1_s / ratio_epochs / len(runs) * 1e3:.0f} ms per run-epoch)")

    if run_step_loop:
        t = time.perf_counter()
        step_loop(engine, runs[:1], host_train, host_dev, 1, warmup_only=True)
        warm_s = time.perf_counter() - t
        t = time.perf_counter()
        loop_scores = step_loop(engine, runs, host_train, host_dev, args.loop_epochs)
        e_s = time.perf_counter() - t
        print(f"E  one after another, a jitted step per host batch as eri_jax.train "
              f"(compile + warm-up: {warm_s:.2f} s), "
              f"{args.loop_epochs} epoch(s) each: {e_s:.2f} s ({e_s / args.loop_epochs / len(runs) * 1e3:.0f} ms per "
              f"run-epoch; dev mean Pearson median {np.median(loop_scores):.3f})")
    per_b = b_s / ratio_epochs
    print(f"ratio D / B (vmapped speed-up over the compiled loop): {d_s / b_s:.2f}x"
          + (f"; D / B' (other layout): {d_s / b1_s:.2f}x" if args.flat_check else "")
          + (f"; E / B (over the eri_jax.train-style loop, per epoch): {e_s / args.loop_epochs / per_b:.2f}x"
             if run_step_loop else ""))


if __name__ == "__main__":
    main()
