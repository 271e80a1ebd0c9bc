"""Entry point: `python -m eri_jax.explain` (see cli.py)."""
import sys

from eri_jax.explain.cli import main

if __name__ == "__main__":
    sys.exit(main())
