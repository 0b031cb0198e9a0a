"""Where things live: the repository root and the folders the companion reads and writes.

Each location moves with an environment variable, read at call time (tests and the papermill
driver keep their runs apart this way); nothing depends on the working directory:

==================  ==========================  ===========================================
function            default                     environment variable
==================  ==========================  ===========================================
``root()``          the repository root         ``MODLIB_ROOT``
``cache_dir()``     ``data/cache/``             ``MODLIB_CACHE_DIR``
``figures_dir()``   ``figures/``                ``MODLIB_FIGURES_DIR``
``build_dir()``     ``build/``                  ``MODLIB_BUILD_DIR``
``metrics_dir()``   ``results/``                ``MODLIB_METRICS_DIR``
==================  ==========================  ===========================================
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def _from_env(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    return Path(value).expanduser().resolve() if value else default


def root() -> Path:
    """The repository root (the folder that holds ``modlib/`` and ``notebooks/``)."""
    return _from_env("MODLIB_ROOT", _PACKAGE_ROOT)


def cache_dir() -> Path:
    """``data/cache/`` (git-ignored): datasets, checkpoints and other reusable results."""
    return _from_env("MODLIB_CACHE_DIR", root() / "data" / "cache")


def figures_dir() -> Path:
    """``figures/``: every figure the notebooks write, plus ``MANIFEST.json``."""
    return _from_env("MODLIB_FIGURES_DIR", root() / "figures")


def build_dir() -> Path:
    """``build/`` (git-ignored): executed notebooks and metrics JSON."""
    return _from_env("MODLIB_BUILD_DIR", root() / "build")


def metrics_dir() -> Path:
    """``results/``: one JSON file of headline numbers per notebook."""
    return _from_env("MODLIB_METRICS_DIR", root() / "results")


def notebooks_dir() -> Path:
    """``notebooks/``: the numbered tutorial notebooks (stored without outputs)."""
    return root() / "notebooks"

