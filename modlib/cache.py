"""Verified cached artefacts: what ``save`` wrote is what ``load`` returns, or nothing.

An artefact is one ``torch.save`` file of ``{"record", "identity"}`` plus a ``<name>.sha256``
sidecar; ``load`` checks digest and identity, moves a failing file aside and returns ``None``
(or raises under ``MODLIB_CACHE_STRICT=1``). How and why, and the lock pattern: ``docs/cache.md``.

Introduced in notebook 01_train_models (through ``train.load_or_train``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import filelock
import torch

from . import progress, store

STRICT_ENV = "MODLIB_CACHE_STRICT"
STALE_SECONDS = 600.0   # an unlocked temp file, or any temp file untouched this long, is stale
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


class CacheError(RuntimeError):
    """A cached artefact failed verification and strict mode forbids recomputing it."""


class CacheWarning(UserWarning):
    """A cached artefact failed verification; it was moved aside and will be recomputed."""


def digest_path(path: str | os.PathLike) -> Path:
    """The sidecar ``<name>.sha256`` that holds ``path``'s SHA-256 digest."""
    return Path(f"{os.fspath(path)}.sha256")


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file ``<name>.lock`` that :func:`lock` holds for ``path``."""
    return Path(f"{os.fspath(path)}.lock")


def save(path: str | os.PathLike, record: dict, *, identity: dict) -> Path:
    """Atomically write ``{"record": record, "identity": identity}`` and its digest sidecar;
    return ``path`` as a ``Path``.

    Args:
        record: tensors, numbers, strings and containers of them (``weights_only`` loadable).
        identity: what the artefact claims to be, JSON-able; :func:`load` compares it.

    Raises:
        TypeError: ``record`` is not a dict, or ``identity`` is not a JSON-able dict.
    """
    path = Path(path)
    if not isinstance(record, dict):
        raise TypeError(f"record must be a dict, got {type(record).__name__}")
    _canonical(identity)
    buffer = io.BytesIO()
    torch.save({"record": record, "identity": identity}, buffer)
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    with lock(path):
        remove_stale_temp(path.parent)
        store.write_bytes(path, payload)
        store.atomic_write(digest_path(path),
                           lambda tmp: tmp.write_text(f"{digest}  {path.name}\n"))
    return path


def load(path: str | os.PathLike, *, identity: dict, strict: bool | None = None) -> dict | None:
    """The record that :func:`save` cached at ``path`` for ``identity`` (compared as canonical
    JSON), or ``None`` when absent or failing verification: then a :class:`CacheWarning` names
    the reason and the file is moved aside to ``<name>.corrupt-<n>`` (``docs/cache.md``).

    Args:
        strict: raise :class:`CacheError` instead; ``None`` reads ``MODLIB_CACHE_STRICT``.

    Raises:
        CacheError: verification failed under strict mode (names the file and the reason).
        ValueError: ``MODLIB_CACHE_STRICT`` holds something other than 1/0/true/false/yes/no.
        TypeError: ``identity`` is not a JSON-able dict.
    """
    path = Path(path)
    wanted = _canonical(identity)
    strict = _strict(strict)
    remove_stale_temp(path.parent)
    if not path.exists():
        return None
    record, reason = _verified(path, wanted)
    if reason is None:
        return record
    # A writer may be between the file and its sidecar: judge again once it has finished.
    with lock(path):
        if not path.exists():
            return None
        record, reason = _verified(path, wanted)
        return record if reason is None else reject(path, reason, strict=strict)


def reject(path: str | os.PathLike, reason: str, *, strict: bool | None = None) -> None:
    """Report ``path`` as unusable (``reason``), move it and its sidecar aside, return ``None``;
    under strict mode raise :class:`CacheError` instead and move nothing."""
    path = Path(path)
    if _strict(strict):
        raise CacheError(f"cached file {path} is unusable: {reason} (strict mode, "
                         f"{STRICT_ENV}=1: delete or move the file to recompute it)")
    with lock(path):
        aside = _move_aside(path)
    message = (f"cached file {path} is unusable: {reason}; moved it aside to {aside.name} and "
               "recomputing it")
    warnings.warn(message, CacheWarning, stacklevel=3)
    if progress.headless():     # under the driver the warning lands in the executed notebook:
        print(f"warning: {message}", file=sys.__stderr__, flush=True)   # say it on the terminal


@contextlib.contextmanager
def lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold the lock ``<name>.lock`` of the artefact ``path`` for the ``with`` block (across
    processes and threads; re-entrant within one thread). Yields ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(lock_path(path), is_singleton=True):
        yield path


def remove_stale_temp(folder: str | os.PathLike, max_age: float = STALE_SECONDS) -> list[Path]:
    """Delete and return the temp files ``.<name>.XXXXXXXX.tmp`` in ``folder`` whose artefact's
    lock is free or that are older than ``max_age`` seconds (interrupted writes)."""
    folder = Path(folder)
    removed = []
    for tmp in folder.glob(".*.tmp"):
        artefact = folder / tmp.name[1:-len(".tmp")].rsplit(".", 1)[0]
        try:
            if time.time() - tmp.stat().st_mtime > max_age or _lock_is_free(artefact):
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:      # its writer renamed or removed it meanwhile
            continue
    return removed


def _lock_is_free(artefact: Path) -> bool:
    if not lock_path(artefact).exists():
        return True
    try:
        with filelock.FileLock(lock_path(artefact), is_singleton=True).acquire(blocking=False):
            return True
    except filelock.Timeout:
        return False


def _verified(path: Path, wanted: str) -> tuple[dict | None, str | None]:
    """``(record, None)`` if ``path`` passes every check, else ``(None, reason)``."""
    try:
        payload = path.read_bytes()
    except OSError as error:
        return None, f"cannot be read ({error})"
    if not payload:
        return None, "the file is empty"
    sidecar = digest_path(path)
    try:
        expected = sidecar.read_text().split()[0].lower()
    except (OSError, IndexError):
        return None, (f"its digest file {sidecar.name} is missing or empty (an interrupted "
                      "write, or a file cached before modlib kept digests)")
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        return None, (f"SHA-256 of its {len(payload)} bytes is {actual[:16]}..., but "
                      f"{sidecar.name} says {expected[:16]}... (truncated or modified)")
    try:
        stored = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as error:   # noqa: BLE001 - any unpickling failure means an unusable file
        return None, f"torch.load failed: {type(error).__name__}: {error}"
    if not isinstance(stored, dict) or set(stored) != {"record", "identity"}:
        return None, "it is not a modlib cache file (no record and identity)"
    try:
        found = _canonical(stored["identity"])
    except TypeError:
        return None, "its stored identity is not a JSON-able dict"
    if found != wanted:
        return None, f"it was saved for another identity: {_difference(found, wanted)}"
    return stored["record"], None


def _difference(found: str, wanted: str) -> str:
    """The differing entries of two identities, nested keys joined by dots."""
    a, b = _flatten(json.loads(found)), _flatten(json.loads(wanted))
    absent = "<absent>"
    diff = [f"{k}: stored {a.get(k, absent)!r}, asked {b.get(k, absent)!r}"
            for k in sorted(set(a) | set(b)) if a.get(k, absent) != b.get(k, absent)]
    return ("; ".join(diff[:4]) + ("; ..." if len(diff) > 4 else ""))[:600]


def _flatten(value, prefix: str = "") -> dict:
    if not isinstance(value, dict) or not value:
        return {prefix[:-1]: value}
    return {k: v for key, item in value.items()
            for k, v in _flatten(item, f"{prefix}{key}.").items()}


def _move_aside(path: Path) -> Path:
    """Rename ``path`` (and its sidecar) to the first free ``<name>.corrupt-<n>``."""
    files = (path, digest_path(path))
    n = 1
    while any(Path(f"{f}.corrupt-{n}").exists() for f in files):
        n += 1
    for f in files:
        if f.exists():
            os.replace(f, f"{f}.corrupt-{n}")
    return Path(f"{path}.corrupt-{n}")


def _canonical(identity) -> str:
    if not isinstance(identity, dict):
        raise TypeError(f"identity must be a dict, got {type(identity).__name__}")
    try:
        return json.dumps(identity, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"identity must be JSON-able (numbers, strings, lists, dicts): "
                        f"{error}") from None


def _strict(strict: bool | None) -> bool:
    if strict is not None:
        return bool(strict)
    value = os.environ.get(STRICT_ENV, "").strip().lower()
    if value in _TRUE + _FALSE:
        return value in _TRUE
    raise ValueError(f"{STRICT_ENV}={os.environ[STRICT_ENV]!r} is not allowed: use 1 (error on a "
                     "corrupt cache file) or 0 (move it aside and recompute)")
