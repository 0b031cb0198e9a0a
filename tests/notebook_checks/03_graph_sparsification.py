"""Range checks on what notebook 03_graph_sparsification records under the smoke profile."""

import pytest


def check(m):
    assert m["profile"] == "smoke" and m["graph_size"] == 100
    assert m["check"]["Q_modlib"] == pytest.approx(m["check"]["Q_networkx"], abs=1e-9)
    for arch, record in m["models"].items():
        rules = record["rules"]
        assert set(rules) == {"kNN", "threshold", "top fraction"}
        assert set(rules["kNN"]) == {"3", "5"} and set(rules["top fraction"]) == {"0.05", "0.1"}
        n = len(record["layers"])
        knn = rules["kNN"]["3"]
        assert all(150 <= e <= 300 for e in knn["edges"]), knn["edges"]   # N·k/2 .. N·k
        assert knn["isolated"] == [0] * n                      # every node has k neighbours
        assert rules["top fraction"]["0.05"]["edges"] == [248] * n     # ceil(0.05 · 4950)
        assert rules["top fraction"]["0.1"]["edges"] == [495] * n
        low, high = rules["threshold"]["0.5"]["edges"], rules["threshold"]["0.8"]["edges"]
        assert all(h <= lo for h, lo in zip(high, low))        # a higher τ keeps fewer pairs
        for graph in (g for rule in rules.values() for g in rule.values()):
            for q, p_intra, q_intra, edges in zip(graph["Q"], graph["P_intra"],
                                                  graph["Q_intra_edges_only"], graph["edges"]):
                if edges == 0:
                    assert q is None and q_intra is None
                    continue
                assert 0 <= p_intra <= 1
                assert -0.5 <= q <= p_intra + 1e-12             # Q = P_intra − Σ a_c² (docs/similarity_graphs.md)
                # the intra-class edges alone: Q = 1 − Σ a_c² ≤ 1 − 1/C with C = 10 classes
                assert q_intra is None or 0 <= q_intra <= 0.9 + 1e-12
        assert knn["Q"][-1] > 0.2, (arch, knn["Q"])            # trained: classes separate
    # the claim, tested over the training seeds of the smoke profile
    assert m["seeds"] == [0, 1]
    rises = m["top_fraction_rise"]
    assert len(rises["rise"]) == 2 * len(m["models"]) and set(rises["seed"]) == {0, 1}
    assert [c["id"] for c in m["claims"]] == [f"B-subgraph-modularity-rises-{a}"
                                              for a in ("vgg11", "resnet20")]
    for claim in m["claims"]:
        arch = claim["id"].rsplit("-", 1)[1]
        mine = [r for r, a in zip(rises["rise"], rises["model"]) if a == arch]
        assert claim["n_seeds"] == 2 and claim["effect"] == pytest.approx(sum(mine) / 2, abs=1e-3)
        assert claim["ci_low"] <= claim["effect"] <= claim["ci_high"]
        assert claim["verdict"] in ("supported", "refuted", "inconclusive")
        assert -1 < claim["effect"] < 1
