"""Entry point: `python -m eri_jax.sweep` (see cli.py)."""
import sys

from eri_jax.sweep.cli import main

if __name__ == "__main__":
    sys.exit(main())
