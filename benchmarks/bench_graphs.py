"""Time modlib's kNN graph + modularity against a plain reference, and check they agree.

The reference follows paper A's official code (``utils/calculate_similarity.py`` and
``utils/network_indicators.py``; see docs/modularity_curves.md): cosine similarity with NumPy, a
``heapq.nlargest`` top-k per row in Python, a dense float64 adjacency symmetrised as (A + Aᵀ)/2,
``networkx.from_numpy_array`` and ``networkx.community.modularity`` with the class partition.
modlib computes the same Q with blocked torch matrix products, a vectorised top-k and a closed-form
modularity over the edge list.

Run: ``python benchmarks/bench_graphs.py [--sizes 1000 2000 5000] [--dim 512] [--k 3]
[--repeat 3]``. Each side is timed ``repeat`` times and the best time is kept (the usual way to
shut out noise from the rest of the machine). Prints one row per N with both times, the
speed-up ratio and both Q values; exits non-zero if the two Q differ by more than 1e-9.
"""

from __future__ import annotations

import argparse
import heapq
import sys
import time

import networkx as nx
import numpy as np
import torch

from modlib import graphs, modularity


def reference_q(features: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Q the way the original code computes it (one Python heap per row, dense N x N)."""
    x = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-8)
    s = x @ x.T
    np.fill_diagonal(s, 0.0)
    n = len(s)
    directed = np.zeros((n, n))
    for i in range(n):
        row = s[i]
        for j in heapq.nlargest(k, range(n), key=row.__getitem__):
            directed[i, j] = row[j]
    adjacency = (directed + directed.T) / 2
    graph = nx.from_numpy_array(adjacency)
    communities = [np.flatnonzero(labels == c).tolist() for c in np.unique(labels)]
    return nx.community.modularity(graph, communities)


def modlib_q(features: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    return modularity.modularity(graphs.knn_graph(features, k), labels)


def clustered_features(n: int, dim: int, num_classes: int, seed: int):
    """Class prototypes plus noise, so that Q is far from 0 and the check is meaningful."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n)
    prototypes = rng.standard_normal((num_classes, dim))
    features = prototypes[labels] + 2.0 * rng.standard_normal((n, dim))
    return features.astype(np.float32), labels


def best_of(repeat: int, function, *args) -> tuple[float, float]:
    """(best wall-clock seconds over ``repeat`` calls, the value returned)."""
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        value = function(*args)
        times.append(time.perf_counter() - start)
    return min(times), value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 5000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="timings per side; best is kept")
    args = parser.parse_args(argv)

    print(f"kNN graph + modularity, D={args.dim}, k={args.k}, {args.classes} classes, "
          f"torch threads={torch.get_num_threads()}, best of {args.repeat}")
    print(f"{'N':>6} {'reference s':>12} {'modlib s':>10} {'ratio':>8} {'Q reference':>14} "
          f"{'Q modlib':>14}")
    worst = 0.0
    for n in args.sizes:
        features, labels = clustered_features(n, args.dim, args.classes, seed=n)
        ft, lt = torch.from_numpy(features), torch.from_numpy(labels)
        modlib_q(ft[:100], lt[:100], args.k)                     # warm-up (thread pools)
        t_ours, q_ours = best_of(args.repeat, modlib_q, ft, lt, args.k)
        t_ref, q_ref = best_of(args.repeat, reference_q, features, labels, args.k)
        worst = max(worst, abs(q_ours - q_ref))
        print(f"{n:>6} {t_ref:>12.3f} {t_ours:>10.3f} {t_ref / t_ours:>7.1f}x "
              f"{q_ref:>14.10f} {q_ours:>14.10f}", flush=True)
    print(f"largest |Q difference| = {worst:.2e}")
    return 0 if worst <= 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
