# Two entry points for a fresh machine: `make demo` and `make test`. Each builds the environment first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Extra pip options, e.g. --extra-index-url for PyTorch's CPU wheels where only the public index is seen.
PIP_EXTRA ?=

.PHONY: setup demo reproduce-demo test clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints/cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(PIP_EXTRA) -c constraints/cpu.txt -e '.[extract,dev,ray]'
	touch $(STAMP)

# Main job on the built-in synthetic reaction-video set (labelled synthetic everywhere).
demo: setup
	$(PY) -m extract
	$(PY) -m eri_jax.train --model viper --preset demo

# The paper's whole table on the synthetic set (tiny random-weight models); resumable, see eri_jax/reproduce.
reproduce-demo: setup
	$(PY) -m eri_jax.reproduce --demo

# Lint first (ruff: pyflakes, pycodestyle errors, import order; pyproject.toml), then the tests.
test: setup
	$(VENV)/bin/ruff check .
	JAX_PLATFORMS=cpu $(PY) -m pytest -q -n 2 tests

clean:
	rm -rf $(VENV) runs
