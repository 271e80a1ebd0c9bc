"""Entry point: `python -m eri_jax.reproduce` (see cli.py)."""
import sys

from eri_jax.reproduce.cli import main

if __name__ == "__main__":
    sys.exit(main())
