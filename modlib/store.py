"""Atomic writes: the one way modlib puts a file on disk.

A file is written to a temporary name in the destination folder and then renamed over the
destination (``os.replace`` is atomic on POSIX and Windows). An interrupted run therefore leaves
either the old file or the new one, never a truncated checkpoint, cache entry or figure.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from . import paths


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` to fill a temporary file, then rename it to ``path``.

    The parent folder is created if missing. If ``write`` raises, the temporary file is removed and
    ``path`` is untouched. Returns ``path`` as a ``Path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())   # mkstemp makes files private (0600); use the usual
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_json(path: str | os.PathLike, obj) -> Path:
    """Atomically write ``obj`` as pretty, key-sorted JSON (so reruns give identical files).

    Raises:
        ValueError: ``obj`` holds NaN or infinity, which JSON cannot represent.
    """
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def jsonable(obj):
    """``obj`` with NumPy scalars and arrays turned into Python numbers and lists, tuples into
    lists, and NaN into ``None`` (JSON's null: "undefined", e.g. a mean over no pairs)."""
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
    """Write a notebook's headline numbers to ``results/<notebook>.json`` (``paths.metrics_dir``).

    ``notebook`` is the notebook's stem, e.g. ``"05_modularity_curves"``. Values pass through
    :func:`jsonable` (NaN becomes null); infinities are refused. The smoke tests read these files
    and check the numbers against sane ranges.
    """
    write_json(paths.metrics_dir() / f"{notebook}.json", jsonable(metrics))


def read_metrics(notebook: str) -> dict:
    """Read what :func:`write_metrics` wrote for ``notebook``."""
    return json.loads((paths.metrics_dir() / f"{notebook}.json").read_text())
