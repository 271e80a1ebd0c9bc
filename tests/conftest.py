"""Settings for the whole test session."""
from __future__ import annotations

import gc

import pytest


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    """Collect the session's garbage now, then freeze what survives, so that the session ends quickly.

    Why: under xdist, a worker reports its results at the end of this hook, and the controller then asks
    it to exit; execnet gives the worker 5 s and then sends it SIGINT. After reporting, pytest still runs
    two full `gc.collect()` passes (unraisableexception: unconfigure and cleanup), each walking every
    tracked object of a heap that holds jax, torch, TFDS and their compiled caches: ~1 s each on a quiet
    machine, past 5 s on two busy cores. The SIGINT then arrives during a collection, where the only
    Python code that runs is the gc callbacks, hypothesis' (hypothesis.internal.conjecture.junkdrawer)
    first among them; an exception raised in a gc callback cannot propagate, so CPython prints it as
    "Exception ignored in ... gc_callback ... KeyboardInterrupt" after a green summary.

    Collecting here, while pytest's unraisable-exception hook still watches and before the worker
    reports, keeps what that pass is for (errors in finalizers are still reported); freezing the survivors,
    all reachable, moves them out of every later pass, so the passes after the report take milliseconds.
    """
    gc.collect()
    gc.freeze()
