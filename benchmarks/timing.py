"""What the benchmark scripts share: the best of several wall-clock timings.

The scripts run as ``python benchmarks/bench_*.py`` (``make bench``), so this folder is on their
import path.
"""

from __future__ import annotations

import time


def best_time(fn, repeat: int) -> tuple[float, object]:
    """The fastest of ``repeat`` calls of ``fn()`` in seconds, and the value of the last call:
    the minimum is the least disturbed by other work on the machine."""
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value
