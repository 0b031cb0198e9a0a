"""Atomic writes, the one way modlib puts a file on disk: a temporary file in the destination
folder, renamed over the destination, so an interrupted run leaves the old file or the new one.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from . import paths


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` to fill a temporary file, then rename it to ``path`` (returned
    as a ``Path``); if ``write`` raises, ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")    # ``write`` creates it
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_json(path: str | os.PathLike, obj) -> Path:
    """Atomically write ``obj`` as pretty, key-sorted JSON.

    Raises:
        ValueError: ``obj`` holds NaN or infinity.
    """
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def jsonable(obj):
    """``obj`` with arrays and tuples as lists, NumPy scalars as numbers and NaN as ``None``."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):                      # NumPy scalars and arrays, torch tensors
        return jsonable(obj.tolist())
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def write_metrics(notebook: str, metrics: dict) -> None:
    """Write a notebook's headline numbers (through :func:`jsonable`) to
    ``results/<notebook>.json``, e.g. ``notebook="05_modularity_curves"``."""
    write_json(paths.metrics_dir() / f"{notebook}.json", jsonable(metrics))
