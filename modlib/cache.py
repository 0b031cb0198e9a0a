"""Verified cached artefacts: what ``save`` wrote is what ``load`` returns, or nothing.

Every cached artefact (a checkpoint, a per-epoch checkpoint, a population member, activations)
is one ``torch.save`` file holding ``{"record": record, "identity": identity}``, plus a sidecar
``<name>.sha256`` holding the SHA-256 digest of the file's bytes (in ``sha256sum`` format, so
``sha256sum -c`` checks it by hand too). ``identity`` is a JSON-able dict that says what the
artefact claims to be (a training configuration and the code version, for example).

:func:`load` reads the bytes once, checks them against the digest *before* unpickling, unpickles
them with ``torch.load(weights_only=True)`` (no code runs from a cache file), and checks that the
stored identity equals the one asked for. Whatever fails (digest mismatch, truncated or empty
file, missing sidecar, unreadable bytes, another identity), the file is reported once with its
path and the reason (a :class:`CacheWarning`), moved aside to ``<name>.corrupt-<n>`` (with its
sidecar, never deleted), and ``load`` returns ``None`` so that the caller recomputes it. With the
environment variable ``MODLIB_CACHE_STRICT=1`` (or ``strict=True``) it raises :class:`CacheError`
instead, for users who never want silent recomputation. ``docs/cache.md`` tells the whole story.

Why a sidecar rather than an index: each artefact and its digest live and die together (moving a
corrupt file aside moves its digest with it; deleting a folder of checkpoints leaves no stale
index entries), and hundreds of processes writing population members never contend for one
shared index file. The sidecar is written after the file, both atomically and under the
artefact's lock, so "file without sidecar" can only mean an interrupted save (or a reader that
came in between, which :func:`load` resolves by waiting for the lock before judging).

:func:`lock` serialises the computation of one artefact across processes and threads (the
``filelock`` package): callers lock, load again, and compute only if it is still missing, so a
second run started on a cold cache waits for the first one's result instead of recomputing it::

    record = cache.load(path, identity=identity)
    if record is None:
        with cache.lock(path):
            record = cache.load(path, identity=identity)
            if record is None:
                record = compute()
                cache.save(path, record, identity=identity)

:func:`remove_stale_temp` deletes the temporary files that an interrupted atomic write leaves
(``.<name>.XXXXXXXX.tmp``, see ``store.atomic_write``); ``load`` and ``save`` call it on their
folder.

Introduced in notebook 01_training (through ``train.load_or_train``).
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
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file ``<name>.lock`` that :func:`lock` holds for ``path``."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def save(path: str | os.PathLike, record: dict, *, identity: dict) -> Path:
    """Atomically write ``{"record": record, "identity": identity}`` and its digest sidecar.

    Args:
        path: the artefact's file; its folder is created if missing.
        record: what to cache: tensors, numbers, strings, lists, tuples and dicts of them
            (whatever ``torch.load(weights_only=True)`` reads back).
        identity: what the artefact claims to be (JSON-able: numbers, strings, booleans, None,
            lists, tuples and dicts with string keys); :func:`load` compares it.

    Returns:
        ``path`` as a ``Path``.

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
    path.parent.mkdir(parents=True, exist_ok=True)
    with lock(path):
        remove_stale_temp(path.parent)
        store.write_bytes(path, payload)
        store.atomic_write(digest_path(path),
                           lambda tmp: tmp.write_text(f"{digest}  {path.name}\n"))
    return path


def load(path: str | os.PathLike, *, identity: dict, strict: bool | None = None) -> dict | None:
    """The record that :func:`save` cached at ``path`` for ``identity``, or ``None``.

    ``None`` when the file is absent, and also when it fails verification (digest mismatch,
    truncated, empty, missing sidecar, unreadable, another identity): then a
    :class:`CacheWarning` names the file and the reason, and the file and its sidecar are moved
    aside to ``<name>.corrupt-<n>`` / ``<name>.sha256.corrupt-<n>`` so that the caller
    recomputes the artefact.

    Args:
        path: the artefact's file.
        identity: what the caller asks for; must equal the stored identity (compared in
            canonical JSON form, so tuples and lists are the same).
        strict: raise :class:`CacheError` instead of recomputing; ``None`` reads the
            environment variable ``MODLIB_CACHE_STRICT`` (``1``/``0``, default off).

    Raises:
        CacheError: verification failed under strict mode (names the file and the reason).
        ValueError: ``MODLIB_CACHE_STRICT`` holds something other than 1/0/true/false/yes/no.
        TypeError: ``identity`` is not a JSON-able dict.
    """
    path = Path(path)
    wanted = _canonical(identity)
    strict = _strict(strict)
    if path.parent.is_dir():
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
        if reason is None:
            return record
        return reject(path, reason, strict=strict)


def reject(path: str | os.PathLike, reason: str, *, strict: bool | None = None) -> None:
    """Report ``path`` as unusable (``reason``), move it and its sidecar aside, return ``None``.

    For callers that find a verified record unusable (a checkpoint whose weights do not fit the
    model, say). Under strict mode (``strict=True`` or ``MODLIB_CACHE_STRICT=1``) raises
    :class:`CacheError` naming the file and the reason instead, and moves nothing.
    """
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
    return None


@contextlib.contextmanager
def lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold the lock of the artefact ``path`` (file ``<name>.lock``) for the ``with`` block.

    Blocks while another process or thread holds it; re-entrant within one thread. Yields
    ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(lock_path(path), is_singleton=True):
        yield path


def remove_stale_temp(folder: str | os.PathLike, max_age: float = STALE_SECONDS) -> list[Path]:
    """Delete the temporary files of interrupted atomic writes in ``folder``.

    A temp file ``.<name>.XXXXXXXX.tmp`` is stale when nobody holds the lock of its artefact
    ``<name>`` (every :func:`save` writes under that lock), or when it has not been modified for
    ``max_age`` seconds (a writer that bypassed the lock and died). Returns the deleted paths.
    """
    folder = Path(folder)
    removed = []
    for tmp in folder.glob(".*.tmp"):
        artefact = folder / tmp.name[1:-len(".tmp")].rsplit(".", 1)[0]
        try:
            old = time.time() - tmp.stat().st_mtime > max_age
            if old or _lock_is_free(artefact):
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
    if isinstance(value, dict) and value:
        flat = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: value}


def _move_aside(path: Path) -> Path:
    """Rename ``path`` (and its sidecar) to the first free ``<name>.corrupt-<n>``."""
    sidecar = digest_path(path)
    n = 1
    while (path.with_name(f"{path.name}.corrupt-{n}").exists()
           or sidecar.with_name(f"{sidecar.name}.corrupt-{n}").exists()):
        n += 1
    aside = path.with_name(f"{path.name}.corrupt-{n}")
    if path.exists():
        os.replace(path, aside)
    if sidecar.exists():
        os.replace(sidecar, sidecar.with_name(f"{sidecar.name}.corrupt-{n}"))
    return aside


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
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{STRICT_ENV}={os.environ[STRICT_ENV]!r} is not allowed: use 1 (error on a "
                     "corrupt cache file) or 0 (move it aside and recompute)")
