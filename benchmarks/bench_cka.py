"""Time modlib's linear CKA (N × N Gram matrices) against the feature-space formula, and check
that they agree.

The reference evaluates Kornblith et al.'s feature-space form ``‖Yᵀ X‖_F² / (‖Xᵀ X‖_F ‖Yᵀ Y‖_F)``
on centred features with NumPy (float64): it forms D × D matrices, O(D²) memory and O(N·D²)
time. modlib works with ``X Xᵀ`` and ``Y Yᵀ`` (N × N), O(N²) memory and O(N²·D) time, which is
the cheaper side whenever the layers are wider than the batch (conv layers: D = C·H·W in the
thousands, N = 500). See docs/dynamics_and_robustness.md.

Run: ``python benchmarks/bench_cka.py [--n 500] [--dims 256 1024 4096] [--repeat 3]``. Each side
is timed ``repeat`` times and the best time is kept. Prints one row per D with both times, the
speed-up ratio, the reference's D × D working memory, and both CKA values; exits non-zero if they
differ by more than 1e-9.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from timing import best_time

from modlib import cka


def reference_cka(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean(0)
    y = y - y.mean(0)
    return float(np.linalg.norm(y.T @ x) ** 2
                 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--dims", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"{'D':>6} {'reference s':>12} {'modlib s':>10} {'speed-up':>9} {'ref. D×D MB':>12} "
          f"{'CKA ref.':>10} {'CKA modlib':>11}")
    worst = 0.0
    for d in args.dims:
        x = rng.normal(size=(args.n, d))
        y = np.tanh(x @ rng.normal(size=(d, d)) / np.sqrt(d)) + 0.1 * rng.normal(size=(args.n, d))
        t_ref, v_ref = best_time(lambda: reference_cka(x, y), args.repeat)
        t_mod, v_mod = best_time(lambda: cka.cka(x, y), args.repeat)
        worst = max(worst, abs(v_ref - v_mod))
        print(f"{d:>6} {t_ref:>12.4f} {t_mod:>10.4f} {t_ref / t_mod:>9.1f} "
              f"{3 * d * d * 8 / 2**20:>12.1f} {v_ref:>10.6f} {v_mod:>11.6f}")
    if worst > 1e-9:
        print(f"error: the two CKA values differ by {worst:.2e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
