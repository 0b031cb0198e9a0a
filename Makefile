# The companion's commands. The two you need:
#   make figures   regenerate every figure (trains the models on first use)
#   make test      unit tests + smoke runs of every notebook
#   make book      the HTML book: executed notebooks, method notes, API reference (after make figures)
# Each target does the set-up it needs (virtual environment, Jupyter kernel, data).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= default
NOTEBOOKS ?=
SUBMISSIONS ?=

.PHONY: help setup data figures test test-fast test-paper bench gpu-check book book-browser book-test student grade clean

help:
	@echo "make figures   run every notebook (PROFILE=$(PROFILE)) and write figures/, results/ and build/"
	@echo "make test      unit tests and smoke runs of the notebooks"
	@echo "make test-fast unit tests only (no notebook runs, no training over a few seconds)"
	@echo "make test-paper every notebook under the paper profile on a synthetic CIFAR-10 stand-in"
	@echo "make bench     time modlib's core against plain references and print the ratios"
	@echo "make gpu-check train, measure and compare on a CUDA device against the CPU (CPU fallback without one)"
	@echo "make book      HTML book (executed notebooks of PROFILE, method notes, API reference) in build/book/_build/html"
	@echo "make book-test build the book, open every page in headless chromium (installed as root)"
	@echo "make student   student copies of the notebooks (solutions stripped) and autograders in build/course/"
	@echo "make grade SUBMISSIONS=folder   grade submitted notebooks, each in a sandbox (PROFILE=smoke: fast) -> build/course/grades/"
	@echo "make data      fetch and verify Fashion-MNIST"
	@echo "make setup     create .venv with modlib and a Jupyter kernel named 'modlib'"
	@echo "options: PROFILE=smoke|default|paper  NOTEBOOKS='01 05'"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,course,cluster]"
	-git rev-parse --git-dir >/dev/null 2>&1 && $(VENV)/bin/nbstripout --install
	touch $@

# The notebooks' kernel, inside .venv only (--sys-prefix): a user's own kernels are untouched.
KERNEL_SPEC := $(VENV)/share/jupyter/kernels/modlib/kernel.json
$(KERNEL_SPEC): $(VENV)/.installed
	$(PY) -m modlib.companion.run --install-kernel

# bubblewrap: the sandbox of make grade (docs/course.md), Debian's package, installed here when
# apt is available and we are root; otherwise make grade says how to get it.
setup: $(VENV)/.installed $(KERNEL_SPEC)
	@command -v bwrap >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian package bubblewrap (the sandbox of make grade)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	  else echo "note: make grade needs bubblewrap: sudo apt-get install bubblewrap"; fi; }

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
	$(PY) -m modlib.companion.run $(NOTEBOOKS) --profile $(PROFILE)
	@if [ "$(PROFILE)" = default ]; then $(PY) -m modlib.companion.report; fi

# Two pytest workers, one thread each: the notebooks' smoke runs spend much of their time starting
# kernels and importing, so two at a time use both cores of a laptop (TEST_WORKERS=0 runs in one
# process). --dist worksteal: a worker that runs out of tests takes pending ones from the other
# (the default hands each worker a fixed chunk, and one sat idle for most of the run). The smoke networks are trained once per run and shared (tests/conftest.py).
#   make test        unit tests and the smoke runs of every notebook
#   make test-fast   unit tests only: no notebook runs, no training over a few seconds
#   make test-paper  every notebook under --profile paper on the synthetic CIFAR-10 stand-in
TEST_WORKERS ?= 2
PYTEST := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest \
	$(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist worksteal)
test: data
	$(PYTEST) -m "not paper_profile"

test-fast: data
	$(PYTEST) -m "not notebooks and not slow and not paper_profile"

test-paper: data
	$(PYTEST) -m paper_profile

bench: setup
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

# The GPU path on a CUDA device: smoke-recipe training, Q against the CPU, paper-shape step times
gpu-check: setup
	$(PY) benchmarks/gpu_check.py

# The book: Jupyter Book 1.x (execution off) renders the notebooks that make figures executed,
# the method notes, and an API reference that Sphinx autodoc generates from modlib's docstrings;
# MathJax comes from npm's mathjax package (installed into build/mathjax/), so the book reads
# offline. Options: BOOK_REPO_URL=https://github.com/OWNER/REPO for the source links (default: git's
# origin), BOOK_FLAGS=--allow-errors to include notebooks whose run failed.
BOOK_FLAGS ?=
$(VENV)/.book-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e ".[dev,book]"
	touch $@

book: $(VENV)/.book-installed
	@test -f build/mathjax/node_modules/mathjax/es5/tex-mml-chtml.js || command -v npm >/dev/null || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian package npm (for MathJax)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; \
	  else echo "npm is needed once to bundle MathJax: sudo apt-get install npm"; exit 1; fi; }
	$(PY) -m modlib.companion.book --profile $(PROFILE) $(BOOK_FLAGS)

# Debian's chromium and its driver for selenium (no browser download); skipped when present.
book-browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian packages chromium and chromium-driver"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "run: sudo apt-get install chromium chromium-driver"; exit 1; fi

book-test: book-browser book
	$(PY) -m pytest tests/test_book.py tests/test_book_browser.py
# A course: student copies generated from the master notebooks with otter-grader (docs/course.md)
student: setup
	$(PY) -m modlib.companion.course student $(NOTEBOOKS)

# Each submission runs in a bubblewrap sandbox with limits per notebook (docs/course.md):
# TIME_LIMIT=seconds MEMORY_LIMIT=GiB PROCESS_LIMIT=n; ISOLATION=auto|bwrap|user|none (none: only
# for trusted submissions).
ISOLATION ?= auto
GRADE_LIMITS = $(if $(TIME_LIMIT),--time-limit $(TIME_LIMIT)) $(if $(MEMORY_LIMIT),--memory-limit $(MEMORY_LIMIT)) $(if $(PROCESS_LIMIT),--process-limit $(PROCESS_LIMIT))
grade: setup
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=folder  (folder/<student>/NN_slug.ipynb)"; exit 2; }
	$(PY) -m modlib.companion.course grade $(SUBMISSIONS) --profile $(PROFILE) --isolation $(ISOLATION) $(GRADE_LIMITS)

clean:
	rm -rf build
