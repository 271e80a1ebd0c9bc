"""The on-device epoch engine: whole epochs as one compiled call, many runs at once under `jax.vmap`.

The split lives on the accelerator. An epoch is one jitted call:

    perm   = permutation(fold_in(shuffle_key, epoch), N)          per run, on the device
    batches: perm padded to ceil(N/B)*B rows (pad rows masked out of the loss), reshaped [steps, B]
    state  = lax.scan(train_step, state, batches)                  fixed shapes, no host round trip
    r      = pearson_jax(predict(state, dev), dev.labels)          dev mean Pearson, in the same call
    best   = where(mean(r) > best_score, params, best_params)       best epoch kept per run, on device

so Python dispatches once per epoch, not once per step. `vmapped=True` maps that function over a leading
run axis of the carry: each run has its own parameters, optimizer state (its learning rate lives there,
`optax.inject_hyperparams`), dropout RNG, shuffle key and, for the probe, activation index (switched with
`lax.switch`). The data are shared, not copied per run. With `vmapped=False` the same function trains one
run; a run trained alone and the same run trained inside a vmapped sweep agree to float tolerance.

Probe sweeps on the CPU go one step further (stacked.py; `EngineConfig.stack_seeds`). Runs that share a
seed share the batches, so `init` groups them (`Carry.stacking`, static) and each epoch trains every
group as one wide probe (its own forward and loss through the same `update`): one GEMM per layer and
group instead of one batched dot over all runs, the optimizer state in a layout whose elementwise
arithmetic is per run as it stands. The carry stays in the per-run layout between epochs (converted in
the epoch call, under 1 % of an epoch at the Hume size), so everything outside the epoch is unchanged.

Per-run randomness comes from the run's seed only: parameters and dropout from `nnx.Rngs(key(seed))`
(what `eri_jax.train` uses for the same seed), shuffling from `fold_in(key(seed), SHUFFLE_STREAM)`.
The best epoch is the first epoch with the highest dev mean Pearson (strictly greater replaces; an
undefined, NaN score never does). Each step is `train_step.update`, the one step of every training path.

Over several devices (`run_mesh`), the carry's run axis is split over a 1-D `runs` mesh (`init(mesh=...)`;
the caller pads the runs to a multiple of the device count, `padded_runs`) and the data are replicated,
so each device trains its own runs and no step communicates. That uses the run-by-run (vmap) layout: the
stacked layout regroups runs by seed across the run axis, which would move them between devices.
"""
from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from eri_jax.evaluation.metrics import defined_mean, pearson_jax
from eri_jax.models.probe import Probe
from eri_jax.models.viper import Viper
from eri_jax.sweep import stacked
from eri_jax.training.step import forward, make_optimizer, update

# How often each engine function was traced (compiled); tests check one compile per shape and mode.
TRACE_COUNTS: collections.Counter = collections.Counter()
SHUFFLE_STREAM = 0x5348  # fold_in constant separating the shuffle key from the model's key
RUN_AXIS = "runs"


def run_mesh(devices: Any = None) -> Mesh:
    """A 1-D mesh named `runs` over `devices` (default: all devices, of every process)."""
    return Mesh(np.asarray(list(devices) if devices is not None else jax.devices()), (RUN_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array (the splits)."""
    return NamedSharding(mesh, P())


def to_host(tree: Any) -> Any:
    """Arrays of `tree` as numpy, whole: gathered from every process when the mesh spans several (a
    collective every process joins; an array on this process's devices alone, a slice's, is read here)."""
    leaves = jax.tree.leaves(tree)
    if jax.process_count() > 1 and not all(getattr(x, "is_fully_addressable", True) for x in leaves):
        # deferred: only multi-process runs gather (a collective every process joins)
        from jax.experimental import multihost_utils

        return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
    return jax.tree.map(np.asarray, jax.device_get(tree))


def padded_runs(n: int, mesh: Mesh | None) -> int:
    """n rounded up to a multiple of the mesh's device count (the padding runs' results are dropped)."""
    d = 1 if mesh is None else mesh.devices.size
    return -(-n // d) * d

# (rngs, activation index int32 scalar) -> a freshly initialised model.
ModelBuilder = Callable[[nnx.Rngs, jax.Array], nnx.Module]


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class SplitArrays:
    """One split as arrays: x float [N,D] or [N,T,D], labels float32 [N,E] (NaN unlabelled), frame_mask bool [N,T]."""

    x: Any
    labels: Any
    frame_mask: Any = None

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])

    def to_device(self, sharding: Any = None) -> "SplitArrays":
        """The arrays placed on the accelerator once (default device unless `sharding` is given)."""
        return jax.tree.map(lambda a: jax.device_put(a, sharding), self)


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Carry:
    """Everything that changes from epoch to epoch, per run (a leading run axis when vmapped)."""

    state: Any         # nnx.State of (model, optimizer)
    best_params: Any   # nnx.State of the model's Params at the best epoch so far
    best_score: Any    # float32: dev mean Pearson of the best epoch (-inf before any defined score)
    best_epoch: Any    # int32: 1-based best epoch, 0 before any defined score
    shuffle_key: Any   # PRNG key
    # Static: a `stacked.Stacking` (runs grouped by seed) when the model has a stacked forward, else None.
    stacking: Any = dataclasses.field(default=None, metadata=dict(static=True))


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class EpochMetrics:
    """What one epoch reports per run: train loss (mean over labelled entries), dev mean and per-emotion r."""

    train_loss: Any
    dev_mean_pearson: Any
    dev_pearson: Any


@dataclasses.dataclass(frozen=True)
class EngineConfig:
    """Training settings shared by every run of an engine (the swept ones are per-run arrays).

    halve_every: epochs between LR halvings (0 = constant LR), as the ViPER paper's step schedule.
    compiler_options: XLA options for every compiled function, as (name, value) pairs; e.g.
    `(("xla_backend_optimization_level", 0),)` compiles tiny test models several times faster on CPU.
    stack_seeds: train runs that share a seed as one wide model where the model allows it (stacked.py);
    None = on the CPU only, where it is faster. On an H200 the plain vmap was faster (0.67 s against
    0.79 s for 3 epochs of the Table 4 grid, `benchmarks/sweep.py --size gpu`, BENCHMARKS.md).
    """

    batch_size: int
    eval_batch_size: int = 256
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    halve_every: int = 0
    compiler_options: tuple[tuple[str, Any], ...] = ()
    stack_seeds: bool | None = None

    def __post_init__(self):
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError(f"batch sizes must be positive, got {self.batch_size}, {self.eval_batch_size}")
        if self.halve_every < 0:
            raise ValueError(f"halve_every must be >= 0, got {self.halve_every}")

    def halve_steps(self, steps_per_epoch: int) -> int:
        """Optimizer updates between LR halvings (0 = constant LR)."""
        return self.halve_every * steps_per_epoch


class Engine:
    """Trains runs of one model shape on one training-set size; `vmapped` picks sweep or single-run mode.

    build: `ModelBuilder` for the shape. n_train: training rows (fixes the steps per epoch and thereby
    the LR schedule). Compiled functions are cached on the engine: reuse one engine for every group of
    the same shape.
    """

    def __init__(self, build: ModelBuilder, cfg: EngineConfig, *, n_train: int):
        if n_train < 1:
            raise ValueError("the training split is empty")
        self.build = build
        self.cfg = cfg
        self.n_train = n_train
        self.steps_per_epoch = math.ceil(n_train / cfg.batch_size)
        self.halve_steps = cfg.halve_steps(self.steps_per_epoch)
        abstract = nnx.eval_shape(lambda: self._make(jnp.int32(0), jnp.float32(1e-3), jnp.int32(0)))
        self.graphdef = nnx.graphdef(abstract)
        # (model, x [B,D], slot activations) -> [B,M,E] on a model in the stacked layout: runs that share a
        # seed then train as one wide model (stacked.py). Builders without it (ViPER) train run by run.
        self.stacked_forward = getattr(build, "stacked_forward", None)
        self._jitted: dict[tuple[str, bool], Callable] = {}

    # ------------------------------------------------------------------------------------ building

    def _make(self, seed, lr, activation):
        model = self.build(nnx.Rngs(jax.random.key(seed)), activation)
        # One transformation for every run (make_optimizer takes a Python LR and is cached); each run's
        # own LR goes into its optimizer state, which is where inject_hyperparams reads it from.
        tx = make_optimizer(self.cfg.optimizer, 1.0, self.cfg.weight_decay, halve_steps=self.halve_steps)
        optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
        lr_var = optimizer.opt_state.hyperparams["learning_rate"]
        lr_var[...] = jnp.asarray(lr, lr_var[...].dtype)
        return model, optimizer

    def _init_one(self, seed, lr, activation) -> Carry:
        model, optimizer = self._make(seed, lr, activation)
        return Carry(state=nnx.state((model, optimizer)), best_params=nnx.state(model, nnx.Param),
                     best_score=jnp.float32(-jnp.inf), best_epoch=jnp.int32(0),
                     shuffle_key=jax.random.fold_in(jax.random.key(seed), SHUFFLE_STREAM))

    def init(self, seeds, lrs, activations, *, vmapped: bool = True, mesh: Mesh | None = None) -> Carry:
        """Fresh carry. vmapped: 1-D arrays of equal length R (one entry per run); else scalars.

        mesh (vmapped only): the run axis is split over it (`run_mesh`); R must be a multiple of its size,
        and the splits passed to `epoch`/`predict_best` must be `replicated` on it. With more than one
        device the carry keeps the run-by-run layout (module docstring); a one-device mesh puts it there.

        With a stacked forward (the probe), `cfg.stack_seeds` (default: on the CPU) and every seed used by the
        same number (>= 2) of runs, the carry gets a `stacking` (runs grouped by seed) and its epochs train
        each group as one wide model.
        """
        seeds = jnp.asarray(seeds, jnp.int32)
        lrs = jnp.asarray(lrs, jnp.float32)
        activations = jnp.asarray(activations, jnp.int32)
        if vmapped and not (seeds.ndim == lrs.ndim == activations.ndim == 1
                            and seeds.shape == lrs.shape == activations.shape):
            raise ValueError(f"vmapped init needs 1-D seeds, lrs, activations of one length, got shapes "
                             f"{seeds.shape}, {lrs.shape}, {activations.shape}")
        sharded = mesh is not None and mesh.devices.size > 1
        if sharded:
            if not vmapped or seeds.shape[0] % mesh.devices.size:
                raise ValueError(f"a sharded init needs vmapped runs in a multiple of {mesh.devices.size}, "
                                 f"got {seeds.shape}; pad them (padded_runs)")
            # from host arrays: every process passes the same values, each keeps its devices' runs
            seeds, lrs, activations = jax.device_put(tuple(np.asarray(a) for a in (seeds, lrs, activations)),
                                                     NamedSharding(mesh, P(RUN_AXIS)))
        carry = self._fn("init", vmapped)(seeds, lrs, activations)
        if sharded:  # every leaf's leading run axis over the mesh (init's outputs follow its inputs' layout)
            carry = jax.device_put(carry, NamedSharding(mesh, P(RUN_AXIS)))
        elif mesh is not None:  # a one-device mesh (a slice, sweep/slices.py): the carry goes to that device
            carry = jax.device_put(carry, mesh.devices.flat[0])
        stack = jax.default_backend() == "cpu" if self.cfg.stack_seeds is None else self.cfg.stack_seeds
        stack = stack and not sharded
        if vmapped and stack and self.stacked_forward is not None:
            carry = dataclasses.replace(carry, stacking=stacked.plan(np.asarray(seeds).tolist(),
                                                                     np.asarray(activations).tolist()))
        return carry

    # ---------------------------------------------------------------------------------- one epoch

    def _batches(self, shuffle_key, epoch, n: int) -> tuple[jax.Array, jax.Array]:
        """This epoch's order of n rows [steps, B] (pad rows point at row 0) and the real-row mask [steps, B]."""
        b = self.cfg.batch_size
        steps = math.ceil(n / b)
        perm = jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), n)
        order = jnp.concatenate([perm, jnp.zeros(steps * b - n, perm.dtype)]).reshape(steps, b)
        return order, (jnp.arange(steps * b) < n).reshape(steps, b)

    @staticmethod
    def _rows(train: SplitArrays, idx: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array | None]:
        x = jnp.take(train.x, idx, axis=0)
        labels = jnp.take(train.labels, idx, axis=0)
        frame_mask = None if train.frame_mask is None else jnp.take(train.frame_mask, idx, axis=0)
        return x, labels, frame_mask

    @staticmethod
    def _count(labels: jax.Array, row_mask: jax.Array) -> jax.Array:
        """Labelled entries of real rows: the weight of a step's loss in the epoch's mean."""
        return (row_mask[:, None] & ~jnp.isnan(labels)).sum()

    @staticmethod
    def _mean_loss(losses: jax.Array, counts: jax.Array) -> jax.Array:
        total = counts.sum(axis=0)
        return jnp.where(total > 0, (losses * counts).sum(axis=0) / jnp.maximum(total, 1), jnp.nan)

    def _train_epoch(self, state, shuffle_key, train: SplitArrays, epoch) -> tuple[Any, jax.Array]:
        """One run's epoch: `lax.scan` of the train step over the shuffled batches."""
        order, valid = self._batches(shuffle_key, epoch, train.size)

        def step(state, xs):
            idx, row_mask = xs
            x, labels, frame_mask = self._rows(train, idx)
            batch = {"x": x, "frame_mask": frame_mask, "labels": labels, "mask": row_mask}
            state, loss = update(self.graphdef, state, batch)
            return state, (loss, self._count(labels, row_mask))

        state, (losses, counts) = jax.lax.scan(step, state, (order, valid))
        return state, self._mean_loss(losses, counts)

    def _train_epoch_stacked(self, state, shuffle_keys, stacking: stacked.Stacking, train: SplitArrays, epoch
                             ) -> tuple[Any, jax.Array]:
        """The epoch of runs grouped by seed (stacked.py): per step, one wide model per group.

        state, shuffle_keys: [R, ...] in carry order. Returns the state in the stacked layout (with a group
        axis G first) and the train loss [R].
        """
        groups = stacking.groups
        first = np.asarray([g[0] for g in groups])
        order, valid = jax.vmap(self._batches, in_axes=(0, None, None))(shuffle_keys[first], epoch, train.size)
        wide = stacked.to_stacked(state, groups)

        def wide_forward(m, x, frame_mask):
            return self.stacked_forward(m, x, stacking.activations)

        def group_step(state, idx, row_mask):
            x, labels, _ = self._rows(train, idx)
            batch = {"x": x, "labels": labels, "mask": row_mask}
            state, losses = update(self.graphdef, state, batch, forward=wide_forward, loss=stacked.stacked_loss)
            return state, (losses, self._count(labels, row_mask))

        def step(parts, xs):
            idx, row_mask = xs
            # Groups unrolled, not vmapped: each group's arrays lead with their own dimension (vmap would put
            # G first, and XLA:CPU splits elementwise loops over two threads along the leading dimension,
            # unevenly for small G) and the groups' programs are independent, free to run side by side.
            outs = [group_step(parts[g], idx[g], row_mask) for g in range(len(parts))]
            return tuple(o[0] for o in outs), jax.tree.map(lambda *a: jnp.stack(a), *[o[1] for o in outs])

        # scan outside the groups: the carried arrays keep the stacked layout (vmap(scan) would move the
        # run axis to the front of the loop state)
        parts = tuple(jax.tree.map(lambda a: a[g], wide) for g in range(len(groups)))
        parts, (losses, counts) = jax.lax.scan(step, parts, (jnp.swapaxes(order, 0, 1), valid[0]))
        wide = jax.tree.map(lambda *a: jnp.stack(a), *parts)
        train_loss = self._mean_loss(losses, counts[..., None])  # [G, M]
        return wide, stacked.per_run(train_loss, groups)

    def _predict(self, state, params, data: SplitArrays) -> jax.Array:
        """float32 [N,E] from the model in `state` with `params` swapped in, in eval mode, fixed-size chunks."""
        n, b = data.size, min(self.cfg.eval_batch_size, data.size)
        steps = math.ceil(n / b)
        idx = jnp.minimum(jnp.arange(steps * b), n - 1).reshape(steps, b)  # pad rows repeat the last row
        model, _ = nnx.merge(self.graphdef, state)
        nnx.update(model, params)
        model.eval()
        graphdef, rest = nnx.split(model)

        def chunk(_, i):
            m = nnx.merge(graphdef, rest)
            fm = None if data.frame_mask is None else jnp.take(data.frame_mask, i, axis=0)
            return None, forward(m, jnp.take(data.x, i, axis=0), fm)

        _, out = jax.lax.scan(chunk, None, idx)
        return out.reshape(steps * b, -1)[:n]

    def _predict_stacked(self, wide_state, wide_params, stacking: stacked.Stacking, data: SplitArrays
                         ) -> jax.Array:
        """`_predict` for runs in the stacked layout: float32 [R,N,E] in carry order.

        The data are shared by every run, so each chunk's first layer is one GEMM over all R runs.
        """
        n, b = data.size, min(self.cfg.eval_batch_size, data.size)
        steps = math.ceil(n / b)
        idx = jnp.minimum(jnp.arange(steps * b), n - 1).reshape(steps, b)

        def group(state, params):
            model, _ = nnx.merge(self.graphdef, state)
            nnx.update(model, params)
            model.eval()
            graphdef, rest = nnx.split(model)

            def chunk(_, i):
                x = jnp.take(data.x, i, axis=0)
                return None, self.stacked_forward(nnx.merge(graphdef, rest), x, stacking.activations)

            _, out = jax.lax.scan(chunk, None, idx)  # [steps, b, M, E]
            return jnp.moveaxis(out.reshape((steps * b,) + out.shape[2:])[:n], 1, 0)  # [M, N, E]

        return stacked.per_run(jax.vmap(group)(wide_state, wide_params), stacking.groups)

    def _score(self, carry: Carry, state, params, pred, train_loss, dev: SplitArrays, epoch
               ) -> tuple[Carry, EpochMetrics]:
        """One run after its training epoch, from its dev predictions: Pearson, the best epoch and params."""
        r = pearson_jax(pred, dev.labels)
        score = defined_mean(r, xp=jnp)  # mean_pearson_jax on the r already computed
        better = score > carry.best_score  # False for NaN: an undefined epoch never becomes best
        best_params = jax.tree.map(lambda new, old: jnp.where(better, new, old), params, carry.best_params)
        new = Carry(state=state, best_params=best_params,
                    best_score=jnp.where(better, score, carry.best_score),
                    best_epoch=jnp.where(better, jnp.asarray(epoch, jnp.int32) + 1, carry.best_epoch),
                    shuffle_key=carry.shuffle_key, stacking=carry.stacking)
        return new, EpochMetrics(train_loss=train_loss, dev_mean_pearson=score, dev_pearson=r)

    def _params(self, state) -> Any:
        return nnx.state(nnx.merge(self.graphdef, state)[0], nnx.Param)

    def _epoch(self, carry: Carry, train: SplitArrays, dev: SplitArrays, epoch) -> tuple[Carry, EpochMetrics]:
        TRACE_COUNTS["epoch"] += 1
        state, train_loss = self._train_epoch(carry.state, carry.shuffle_key, train, epoch)
        params = self._params(state)
        return self._score(carry, state, params, self._predict(state, params, dev), train_loss, dev, epoch)

    def _sweep_epoch(self, carry: Carry, train: SplitArrays, dev: SplitArrays, epoch) -> tuple[Carry, EpochMetrics]:
        """The vmapped epoch: stacked by seed group where the carry has a stacking, else run by run."""
        if carry.stacking is None:
            return jax.vmap(self._epoch, in_axes=(0, None, None, None))(carry, train, dev, epoch)
        TRACE_COUNTS["epoch"] += 1
        stacking = carry.stacking
        wide, train_loss = self._train_epoch_stacked(carry.state, carry.shuffle_key, stacking, train, epoch)
        wide_params = self._params(wide)  # (merge and state only select arrays: any layout)
        pred = self._predict_stacked(wide, wide_params, stacking, dev)
        state = stacked.from_stacked(wide, carry.state, stacking.groups)
        params = stacked.from_stacked(wide_params, carry.best_params, stacking.groups)
        return jax.vmap(self._score, in_axes=(0, 0, 0, 0, 0, None, None))(carry, state, params, pred, train_loss,
                                                                          dev, epoch)

    def _sweep_predict(self, carry: Carry, data: SplitArrays) -> jax.Array:
        if carry.stacking is None:
            return jax.vmap(lambda c: self._predict(c.state, c.best_params, data))(carry)
        groups = carry.stacking.groups
        return self._predict_stacked(stacked.to_stacked(carry.state, groups),
                                     stacked.to_stacked(carry.best_params, groups), carry.stacking, data)

    def epoch(self, carry: Carry, train: SplitArrays, dev: SplitArrays, epoch: int, *,
              vmapped: bool = True) -> tuple[Carry, EpochMetrics]:
        """Train one epoch (0-based `epoch` picks the shuffle), score dev, update the best; carry is donated."""
        return self._fn("epoch", vmapped)(carry, train, dev, jnp.int32(epoch))

    def predict_best(self, carry: Carry, data: SplitArrays, *, vmapped: bool = True) -> jax.Array:
        """Predictions float32 [(R,) N, E] of each run's best parameters on `data`."""
        return self._fn("predict", vmapped)(carry, data)

    def _fn(self, name: str, vmapped: bool) -> Callable:
        key = (name, vmapped)
        if key not in self._jitted:
            if name == "init":
                f, axes, donate = self._init_one, (0, 0, 0), ()
            elif name == "epoch":
                f, axes, donate = self._epoch, (0, None, None, None), (0,)
            else:
                f, axes, donate = (lambda c, d: self._predict(c.state, c.best_params, d)), (0, None), ()
            if vmapped:  # epochs and predictions check the carry's stacking (by seed group or run by run)
                sweep = {"epoch": self._sweep_epoch, "predict": self._sweep_predict}
                f = sweep[name] if name in sweep else jax.vmap(f, in_axes=axes)
            self._jitted[key] = jax.jit(f, donate_argnums=donate,
                                        compiler_options=dict(self.cfg.compiler_options) or None)
        return self._jitted[key]


def run_epochs(engine: Engine, carry: Carry, train: SplitArrays, dev: SplitArrays, epochs: int, *,
               vmapped: bool = True, on_epoch: Callable[[int, EpochMetrics], None] | None = None
               ) -> tuple[Carry, dict[str, np.ndarray]]:
    """Run `epochs` epochs (one dispatch each); return the final carry and the history on host.

    History arrays have the epoch axis first: train_loss [epochs(, R)], dev_mean_pearson [epochs(, R)],
    dev_pearson [epochs, (R,) E]. on_epoch(epoch, metrics) is called after each dispatch (progress bars).
    """
    history = []
    for e in range(epochs):
        carry, m = engine.epoch(carry, train, dev, e, vmapped=vmapped)
        history.append(m)
        if on_epoch is not None:
            on_epoch(e, m)
    stacked = jax.tree.map(lambda *xs: np.stack(xs), *to_host(history))
    return carry, dataclasses.asdict(stacked)


def take_run(tree: Any, r: int) -> Any:
    """Run `r`'s slice of a vmapped pytree (e.g. `carry.best_params`)."""
    return jax.tree.map(lambda a: a[r], tree)


# ------------------------------------------------------------------------------------------ builders


@dataclasses.dataclass(frozen=True)
class ProbeBuilder:
    """Builds a probe whose activation index is a (traceable) array, so runs with different activations
    vmap; `stacked_forward` lets runs that share a seed train as one wide probe (stacked.py)."""

    in_dim: int
    hidden: int
    num_outputs: int
    dtype: Any = jnp.float32

    def __call__(self, rngs: nnx.Rngs, activation: jax.Array) -> nnx.Module:
        return Probe(self.in_dim, self.hidden, self.num_outputs, activation=jnp.asarray(activation, jnp.int32),
                     rngs=rngs, dtype=self.dtype)

    @staticmethod
    def stacked_forward(model: nnx.Module, x: jax.Array, activations: tuple[int, ...] | None) -> jax.Array:
        return stacked.probe_forward(model, x, activations)


def probe_builder(in_dim: int, hidden: int, num_outputs: int, *, dtype=jnp.float32) -> ModelBuilder:
    """The probe's `ModelBuilder` (a `ProbeBuilder`)."""
    return ProbeBuilder(in_dim, hidden, num_outputs, dtype)


def viper_builder(config: Any, *, dtype=jnp.float32) -> ModelBuilder:
    """ViPER of `config` (a `ViperConfig`); it has no activation choice, so the index is ignored."""
    def build(rngs: nnx.Rngs, activation: jax.Array) -> nnx.Module:
        del activation
        return Viper(config, rngs=rngs, dtype=dtype, param_dtype=jnp.float32)

    return build
