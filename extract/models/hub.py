"""May the Hugging Face hub be asked? The offline variables, else one quick probe per process.

Without this, a hub id that is not in the local cache makes huggingface_hub retry every request with
backoff (about half a minute per file) before failing when there is no network. One HEAD request to
the hub's endpoint with a short timeout decides instead: when it gets no answer, the process turns
hub access off (as `HF_HUB_OFFLINE=1` would, for this process and the workers it starts), every model
is then looked up in the local cache only, and a missing one fails at once with a message naming the
id and the flag that takes a local folder.
"""
from __future__ import annotations

import os
import threading

PROBE_TIMEOUT_S = 3.0
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def offline_by_env() -> bool:
    """True when the environment forbids hub access (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARS)


def probe(endpoint: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when `endpoint` answers an HTTP HEAD (any status) within `timeout` seconds, else why not.

    Runs in a daemon thread so that a hanging name lookup (which no socket timeout covers) is bounded too;
    goes through huggingface_hub's session, so proxy settings apply as they do for downloads.
    """
    # deferred: huggingface_hub reads HF_HUB_OFFLINE when first imported
    from huggingface_hub.utils import get_session

    outcome: list[str | None] = []

    def ask() -> None:
        try:
            get_session().head(endpoint, timeout=timeout)
            outcome.append(None)
        except Exception as e:  # any failure to get an answer means: do not rely on the hub
            outcome.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no answer'}")

    t = threading.Thread(target=ask, daemon=True, name="hub-probe")
    t.start()
    t.join(timeout + 0.5)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


_probed: list[str | None] = []  # the probe's outcome, once per process


def _probe_once() -> str | None:
    # deferred: huggingface_hub reads HF_HUB_OFFLINE when first imported
    from huggingface_hub import constants

    if not _probed:
        reason = probe(constants.ENDPOINT)
        if reason is not None:  # from now on nothing in this process (or its workers) reaches for the hub
            os.environ["HF_HUB_OFFLINE"] = "1"
            constants.HF_HUB_OFFLINE = True
            reason = f"the hub at {constants.ENDPOINT} did not answer ({reason})"
        _probed.append(reason)
    return _probed[0]


def why_offline() -> str | None:
    """None when the hub may be asked; else why not: the failed probe, or the offline variable."""
    if _probed and _probed[0] is not None:
        return _probed[0]
    if offline_by_env():
        return "hub access is off (HF_HUB_OFFLINE)"
    return _probe_once()


def hub_offline() -> bool:
    """True when models must come from the local cache only (offline variables, or the hub did not answer)."""
    return why_offline() is not None
