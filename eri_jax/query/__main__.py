"""`python -m eri_jax.query`: see `eri_jax.query.cli`."""
import sys

from eri_jax.query.cli import main

if __name__ == "__main__":
    sys.exit(main())
