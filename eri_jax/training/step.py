"""Pure, jit-compiled step functions: `state, batch -> state, loss` and `state, batch -> predictions`.

The state is the `nnx.State` of `(model, optimizer)` (parameters, optimizer moments, step counters and
the dropout RNG), split once from its static graph definition; every step is a pure function of
(state, batch), compiled once for the fixed batch shape, with the state buffers donated.

A batch is a dict of arrays with a fixed leading size B: `x` [B,T,D] or [B,D], optional `frame_mask`
bool[B,T], `labels` float32[B,E] (NaN = unlabelled), `mask` bool[B] (False = padding row).

The loss is the mean squared error over the labelled (row, emotion) entries only:
    L = sum_{b,e} m_be (f(x_b)_e - y_be)^2 / max(1, sum_{b,e} m_be),  m_be = mask_b and y_be is not NaN
which equals PyTorch's `MSELoss()` on a fully labelled batch.

The optimizer keeps its base learning rate (and weight decay) in its state via `optax.inject_hyperparams`,
so a sweep can vmap over them; the step schedule multiplies the update by 0.5 ** (step // halve_steps),
which is PyTorch's `StepLR(gamma=0.5)` applied to AdamW (decoupled weight decay scales with the LR too).
"""
from __future__ import annotations

import collections
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

# Counts how often each step function is traced (compiled); tests assert it stays at one per shape.
TRACE_COUNTS: collections.Counter = collections.Counter()


def lr_factor(step: jax.Array | int, halve_steps: int) -> jax.Array:
    """Step-schedule multiplier after `step` optimizer updates: halves every `halve_steps` (0 = constant)."""
    if halve_steps <= 0:
        return jnp.ones((), jnp.float32)
    return jnp.asarray(0.5, jnp.float32) ** (jnp.asarray(step) // halve_steps)


def _transform(learning_rate, weight_decay, *, optimizer: str, halve_steps: int):
    if optimizer == "adamw":
        base = optax.adamw(learning_rate, weight_decay=weight_decay)
    elif optimizer == "adam":
        base = optax.adam(learning_rate)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose adamw or adam")
    if halve_steps <= 0:
        return base
    return optax.chain(base, optax.scale_by_schedule(lambda step: lr_factor(step, halve_steps)))


@functools.lru_cache(maxsize=64)
def make_optimizer(optimizer: str, lr: float, weight_decay: float = 0.0, *,
                   halve_steps: int = 0) -> optax.GradientTransformation:
    """AdamW or Adam with the base LR and weight decay as injected hyperparameters (vmappable state).

    halve_steps: optimizer updates between LR halvings (epochs x steps per epoch); 0 = constant LR.
    Cached: equal arguments give the same object, hence equal graph definitions of the optimizer, so
    the compiled steps below are reused (a resumed run in the same process does not recompile).
    """
    return optax.inject_hyperparams(_transform, static_args=("optimizer", "halve_steps"))(
        learning_rate=lr, weight_decay=weight_decay, optimizer=optimizer, halve_steps=halve_steps)


def masked_mse(pred: jax.Array, labels: jax.Array, row_mask: jax.Array) -> jax.Array:
    """MSE over labelled entries of real rows (module docstring). NaN labels never reach the gradient."""
    m = row_mask[:, None] & ~jnp.isnan(labels)
    y = jnp.where(m, labels, 0.0)  # sanitise first: 0 * NaN in the backward pass would still be NaN
    se = jnp.where(m, (pred.astype(jnp.float32) - y) ** 2, 0.0)
    return se.sum() / jnp.maximum(m.sum(), 1)


def forward(model: nnx.Module, x: jax.Array, frame_mask: jax.Array | None = None) -> jax.Array:
    """The model's float32 predictions [B,E] for inputs x (and frame_mask) of one batch."""
    return model(x, frame_mask).astype(jnp.float32)


def _mse_with_aux(pred: jax.Array, labels: jax.Array, row_mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    loss = masked_mse(pred, labels, row_mask)
    return loss, loss


# (model, x, frame_mask) -> predictions; (predictions, labels, row mask) -> (loss to differentiate, aux).
Forward = Callable[[nnx.Module, jax.Array, "jax.Array | None"], jax.Array]
Loss = Callable[[jax.Array, jax.Array, jax.Array], tuple[jax.Array, Any]]


def update(graphdef: Any, state: Any, batch: dict[str, jax.Array], *, forward: Forward = forward,
           loss: Loss = _mse_with_aux) -> tuple[Any, Any]:
    """One optimizer update: loss, gradients and the update of `(model, optimizer)` on one batch.

    The one step of every training path: the single-run trainer (`make_train_step`), the sweep engine
    run by run (`sweep/engine.py`, vmapped over runs) and runs stacked by seed (`sweep/stacked.py`, which
    passes its wide forward and `stacked_loss`). Returns the new state and `loss`'s aux (default: the
    masked MSE of the module docstring).
    """
    model, optimizer = nnx.merge(graphdef, state)
    model.train()

    def loss_fn(m):
        return loss(forward(m, batch["x"], batch.get("frame_mask")), batch["labels"], batch["mask"])

    (_, aux), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    optimizer.update(model, grads)
    return nnx.state((model, optimizer)), aux


@functools.lru_cache(maxsize=16)
def make_train_step(graphdef: Any, *, state_sharding: Any = None, batch_sharding: Any = None,
                    donate: bool = True) -> Callable:
    """The jitted `train_step(state, batch) -> (state, loss)` (`update`) for the graph of `(model, optimizer)`.

    With shardings (see `training/sharding.py`) the step is compiled for them: state replicated, batch split.
    Cached per (graphdef, shardings), so equal models share one compiled step.
    """

    def train_step(state, batch):
        TRACE_COUNTS["train_step"] += 1
        return update(graphdef, state, batch)

    kwargs: dict[str, Any] = {"donate_argnums": (0,) if donate else ()}
    if state_sharding is not None:
        kwargs["in_shardings"] = (state_sharding, batch_sharding)
        kwargs["out_shardings"] = (state_sharding, state_sharding)
    return jax.jit(train_step, **kwargs)


@functools.lru_cache(maxsize=16)
def make_predict(graphdef: Any, *, state_sharding: Any = None, batch_sharding: Any = None) -> Callable:
    """The jitted `predict(state, batch) -> float32 [B,E]` in eval mode (no dropout; state untouched)."""

    def predict(state, batch):
        TRACE_COUNTS["predict"] += 1
        model, _ = nnx.merge(graphdef, state)
        model.eval()
        return forward(model, batch["x"], batch.get("frame_mask"))

    kwargs: dict[str, Any] = {}
    if state_sharding is not None:
        # Predictions come back whole to every process (a batch split over several hosts could not be read).
        kwargs.update(in_shardings=(state_sharding, batch_sharding), out_shardings=state_sharding)
    return jax.jit(predict, **kwargs)


def opt_state_of(state: Any) -> Any:
    """The optimizer's optax state inside a `(model, optimizer)` state."""
    return state[1]["opt_state"]


def learning_rate(state: Any, halve_steps: int) -> float:
    """The LR in effect for the next update: base LR from the state times the schedule factor."""
    opt = opt_state_of(state)
    base = opt["hyperparams"]["learning_rate"].get_value()
    step = state[1]["step"].get_value()
    return float(base * lr_factor(step, halve_steps))
