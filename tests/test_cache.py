"""Verified cache: every kind of damaged file is caught, moved aside and reported (or refused
under strict mode); stale temp files go; a second concurrent computation waits for the first."""

import hashlib
import os
import pickle
import sys
import threading
import time

import pytest
import torch

from modlib import cache

IDENTITY = {"arch": "vgg11", "milestones": (1, 2), "code_version": 1}
RECORD = {"state_dict": {"w": torch.arange(1000, dtype=torch.float32)}, "history": [{"a": 0.5}]}


@pytest.fixture
def saved(tmp_path, monkeypatch):
    monkeypatch.delenv(cache.STRICT_ENV, raising=False)
    path = tmp_path / "model.pt"
    cache.save(path, RECORD, identity=IDENTITY)
    return path


def assert_moved_aside(path, reason):
    with pytest.warns(cache.CacheWarning, match=reason) as caught:
        assert cache.load(path, identity=IDENTITY) is None
    assert len(caught) == 1 and str(path) in str(caught[0].message)
    assert not path.exists() and not cache.digest_path(path).exists()
    assert path.with_name("model.pt.corrupt-1").is_file()
    assert path.with_name("model.pt.sha256.corrupt-1").is_file()


def test_round_trip_and_digest_file(saved):
    loaded = cache.load(saved, identity={**IDENTITY, "milestones": [1, 2]})   # list == tuple
    assert torch.equal(loaded["state_dict"]["w"], RECORD["state_dict"]["w"])
    assert loaded["history"] == RECORD["history"]
    digest, name = cache.digest_path(saved).read_text().split()
    assert name == "model.pt" and digest == hashlib.sha256(saved.read_bytes()).hexdigest()
    assert cache.load(saved.with_name("absent.pt"), identity=IDENTITY) is None


def test_byte_flipped_file(saved):
    data = bytearray(saved.read_bytes())
    middle = len(data) // 2                      # inside the tensor's bytes
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    saved.write_bytes(bytes(data))
    assert_moved_aside(saved, "SHA-256 of its .* bytes .*truncated or modified")


def test_truncated_file(saved):
    saved.write_bytes(saved.read_bytes()[:-100])
    assert_moved_aside(saved, "truncated or modified")


def test_empty_file(saved):
    saved.write_bytes(b"")
    assert_moved_aside(saved, "the file is empty")


def test_missing_digest(saved):
    cache.digest_path(saved).unlink()
    with pytest.warns(cache.CacheWarning, match="model.pt.sha256 is missing"):
        assert cache.load(saved, identity=IDENTITY) is None
    assert saved.with_name("model.pt.corrupt-1").is_file()


def test_wrong_identity(saved):
    with pytest.warns(cache.CacheWarning, match="arch: stored 'vgg11', asked 'resnet20'"):
        assert cache.load(saved, identity={**IDENTITY, "arch": "resnet20"}) is None
    assert saved.with_name("model.pt.corrupt-1").is_file()


def test_unreadable_and_malicious_files_with_matching_digest(saved, tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    for payload, reason in [(b"not a zip archive", "torch.load failed"),
                            (pickle.dumps(Evil(), protocol=2), "torch.load failed")]:
        saved.write_bytes(payload)
        cache.digest_path(saved).write_text(hashlib.sha256(payload).hexdigest() + "  model.pt\n")
        with pytest.warns(cache.CacheWarning, match=reason):
            assert cache.load(saved, identity=IDENTITY) is None
    assert not (tmp_path / "pwned").exists()
    assert saved.with_name("model.pt.corrupt-2").is_file()      # the second one, numbered on


def test_strict_mode_raises_and_moves_nothing(saved, monkeypatch):
    saved.write_bytes(b"")
    with pytest.raises(cache.CacheError, match=f"{saved}.*the file is empty.*strict"):
        cache.load(saved, identity=IDENTITY, strict=True)
    monkeypatch.setenv(cache.STRICT_ENV, "1")
    with pytest.raises(cache.CacheError, match=str(saved)):
        cache.load(saved, identity=IDENTITY)
    assert saved.exists() and not saved.with_name("model.pt.corrupt-1").exists()
    monkeypatch.setenv(cache.STRICT_ENV, "maybe")
    with pytest.raises(ValueError, match="MODLIB_CACHE_STRICT='maybe' is not allowed"):
        cache.load(saved, identity=IDENTITY)
    monkeypatch.setenv(cache.STRICT_ENV, "0")
    with pytest.warns(cache.CacheWarning):
        assert cache.load(saved, identity=IDENTITY) is None


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="identity must be JSON-able"):
        cache.save(tmp_path / "a.pt", {}, identity={"x": object()})
    with pytest.raises(TypeError, match="record must be a dict"):
        cache.save(tmp_path / "a.pt", [1], identity={})
    with pytest.raises(TypeError, match="identity must be a dict"):
        cache.load(tmp_path / "a.pt", identity="vgg11")


def test_stale_temp_files_are_removed(tmp_path):
    stale = tmp_path / ".model.pt.abcd1234.tmp"          # what a kill during atomic_write leaves
    stale.write_bytes(b"x" * 1000)
    busy = tmp_path / ".other.pt.efgh5678.tmp"           # its writer holds the lock: kept
    busy.write_bytes(b"y")
    old_busy = tmp_path / ".third.pt.ijkl9012.tmp"       # locked, but untouched for an hour
    old_busy.write_bytes(b"z")
    os.utime(old_busy, (time.time() - 3600,) * 2)
    holding, release = threading.Event(), threading.Event()

    def writer():
        with cache.lock(tmp_path / "other.pt"), cache.lock(tmp_path / "third.pt"):
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    holding.wait(10)
    try:
        assert cache.load(tmp_path / "model.pt", identity=IDENTITY) is None
        assert not stale.exists() and busy.exists() and not old_busy.exists()
    finally:
        release.set()
        thread.join()
    cache.save(tmp_path / "model.pt", RECORD, identity=IDENTITY)   # save cleans up too
    assert not busy.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_second_computation_waits_for_the_first(tmp_path):
    path = tmp_path / "shared.pt"
    computed, results = [], {}
    first_has_lock = threading.Event()

    def run(name):
        if name == "second":
            first_has_lock.wait(10)
        record = cache.load(path, identity=IDENTITY)
        if record is None:
            with cache.lock(path):
                if name == "first":
                    first_has_lock.set()
                    time.sleep(0.5)              # the second run arrives while this computes
                record = cache.load(path, identity=IDENTITY)
                if record is None:
                    computed.append(name)
                    record = {"by": name}
                    cache.save(path, record, identity=IDENTITY)
        results[name] = record

    threads = [threading.Thread(target=run, args=(n,)) for n in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert computed == ["first"]
    assert results == {"first": {"by": "first"}, "second": {"by": "first"}}


def test_reader_between_file_and_digest_waits_instead_of_rejecting(tmp_path):
    """A reader that sees the new file before its sidecar waits for the writer's lock."""
    path = tmp_path / "racy.pt"
    cache.save(path, RECORD, identity=IDENTITY)
    sidecar = cache.digest_path(path).read_text()
    cache.digest_path(path).unlink()
    done = threading.Event()

    def writer_finishing():
        with cache.lock(path):
            done.set()
            time.sleep(0.3)
            cache.digest_path(path).write_text(sidecar)

    thread = threading.Thread(target=writer_finishing)
    thread.start()
    done.wait(10)
    record = cache.load(path, identity=IDENTITY)
    thread.join()
    assert record is not None and record["history"] == RECORD["history"]


def test_headless_runs_also_report_on_the_terminal(saved, monkeypatch, capfd):
    monkeypatch.setenv("MODLIB_HEADLESS", "1")
    monkeypatch.setattr("sys.__stderr__", sys.stderr)      # capfd captures the real stderr
    saved.write_bytes(b"")
    with pytest.warns(cache.CacheWarning):
        cache.load(saved, identity=IDENTITY)
    assert f"warning: cached file {saved} is unusable: the file is empty" in capfd.readouterr().err
