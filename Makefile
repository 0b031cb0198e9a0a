# The companion's commands. The two you need:
#   make figures   regenerate every figure (trains the models on first use)
#   make test      unit tests + smoke runs of every notebook
# Each target does the set-up it needs (virtual environment, Jupyter kernel, data).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= default
NOTEBOOKS ?=

.PHONY: help setup data figures test bench clean

help:
	@echo "make figures   run every notebook (PROFILE=$(PROFILE)) and write figures/, results/ and build/"
	@echo "make test      unit tests and smoke runs of the notebooks"
	@echo "make bench     time modlib's core against plain references and print the ratios"
	@echo "make data      fetch and verify Fashion-MNIST"
	@echo "make setup     create .venv with modlib and a Jupyter kernel named 'modlib'"
	@echo "options: PROFILE=smoke|default|paper  NOTEBOOKS='01 05'"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	-git rev-parse --git-dir >/dev/null 2>&1 && $(VENV)/bin/nbstripout --install
	touch $@

# The notebooks' kernel, inside .venv only (--sys-prefix): a user's own kernels are untouched.
KERNEL_SPEC := $(VENV)/share/jupyter/kernels/modlib/kernel.json
$(KERNEL_SPEC): $(VENV)/.installed
	$(PY) -m modlib.run --install-kernel

setup: $(VENV)/.installed $(KERNEL_SPEC)

# Fashion-MNIST: from data/cache/, else Debian's package (installed here when apt is available),
# else an error that says how to get it.
data: setup
	@$(PY) -m modlib.data >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian package dataset-fashion-mnist"; \
	    apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	  elif command -v apt-get >/dev/null 2>&1; then \
	    echo "run: sudo apt-get install dataset-fashion-mnist"; \
	  fi; }
	$(PY) -m modlib.data

figures: data
	$(PY) -m modlib.run $(NOTEBOOKS) --profile $(PROFILE)
	@if [ "$(PROFILE)" = default ]; then $(PY) -m modlib.report; fi

test: data
	$(PY) -m pytest

bench: setup
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf build
