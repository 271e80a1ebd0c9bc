"""How every command of the project ends on bad input: `error: <message>` on stderr, exit code 2, no traceback.

One home for the commands of all three packages (`python -m extract`, `python -m eri_jax.*`,
`python -m tfds_hume.build`): it lives here because both `extract` (which never imports jax) and
`eri_jax` import this package. Usage:

    @cli_main
    def main(argv=None) -> int: ...

Bad input is a `ValueError` (and its subclasses: layout, model-availability and argument errors), a
missing or unreadable file (`FileNotFoundError`, `NotADirectoryError`, `IsADirectoryError`,
`PermissionError`) or `SystemExit("message")`. argparse's own errors already print the usage and
`error: ...` and exit 2, so they pass through. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import functools
import sys
from typing import Callable

USAGE_EXIT = 2
INPUT_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def error(message: object) -> int:
    """Print `error: message` on stderr; return the usage/input exit code (2)."""
    print(f"error: {message}", file=sys.stderr)
    return USAGE_EXIT


def cli_main(main: Callable[..., int]) -> Callable[..., int]:
    """Wrap a command's `main` so that bad input ends in one `error:` message and exit code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except SystemExit as e:
            if isinstance(e.code, str):  # `raise SystemExit("message")`: Python would print it bare and exit 1
                return error(e.code)
            raise
        except INPUT_ERRORS as e:
            return error(e)

    return wrapper
