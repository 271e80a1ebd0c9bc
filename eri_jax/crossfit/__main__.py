"""Entry point: `python -m eri_jax.crossfit` (see cli.py)."""
import sys

from eri_jax.crossfit.cli import main

if __name__ == "__main__":
    sys.exit(main())
