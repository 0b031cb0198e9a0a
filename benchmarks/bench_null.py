"""Time modlib's permutation null of Q (one graph, all relabellings at once) against the plain
reference, a loop that calls networkx's modularity once per permutation; check they agree.

The reference is what a user would write: build the kNN graph once, convert it to networkx, and
for every permutation of the labels call ``networkx.community.modularity``. modlib keeps the
graph's edge list and node strengths and evaluates ``Q = e_in / 2W − Σ_c (S_c / 2W)²`` for a
whole chunk of permutations with one comparison per edge entry and one ``bincount``
(``modularity.permutation_null``; docs/modularity_curves.md, "Is a small Q chance?").

Run: ``python benchmarks/bench_null.py [--n 200 500] [--k 3] [--permutations 200]
[--repeat 3]``. Prints one row per N with both times, the speed-up ratio and the largest
difference between the two (the null and Q itself); exits non-zero if they differ by more than
1e-9.
"""

from __future__ import annotations

import argparse
import sys

import networkx as nx
import numpy as np
from timing import best_time

from modlib import graphs, modularity


def reference_null(adjacency, labelings: np.ndarray) -> np.ndarray:
    graph = graphs.to_networkx(adjacency)
    out = []
    for relabelled in labelings:
        communities = [set(np.flatnonzero(relabelled == c).tolist())
                       for c in np.unique(relabelled)]
        out.append(nx.community.modularity(graph, communities, weight="weight"))
    return np.array(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[200, 500])
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--permutations", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"{'N':>6} {'reference s':>12} {'modlib s':>10} {'speed-up':>9} {'max |ΔQ|':>10}")
    worst = 0.0
    for n in args.n:
        rng = np.random.default_rng(n)
        labels = np.repeat(np.arange(10), n // 10)
        feats = rng.normal(size=(len(labels), 64)) + 1.5 * np.eye(64)[labels * 6]
        adjacency = graphs.knn_graph(feats, args.k)
        seed = np.random.SeedSequence(n)
        # the same relabellings on both sides (modlib draws them with this generator)
        labelings = np.random.default_rng(seed).permuted(
            np.tile(labels, (args.permutations, 1)), axis=1)
        t_ref, v_ref = best_time(lambda: reference_null(adjacency, labelings), args.repeat)
        t_mod, found = best_time(lambda: modularity.permutation_null(
            adjacency, labels, args.permutations, seed, return_null=True), args.repeat)
        diff = max(float(np.abs(v_ref - found["null"]).max()),
                   abs(found["q"] - reference_null(adjacency, labels[None])[0]))
        worst = max(worst, diff)
        print(f"{len(labels):>6} {t_ref:>12.4f} {t_mod:>10.4f} {t_ref / t_mod:>9.1f} "
              f"{diff:>10.2e}")
    return 0 if worst <= 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
