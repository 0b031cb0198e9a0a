"""Range checks on what notebook 04_community_visualisation records under the smoke profile."""

from modlib.companion import run


def check(m):
    from PIL import Image

    assert m["profile"] == "smoke" and m["draw_arch"] == "vgg11" and m["draw_size"] == 40
    assert len(m["drawn_Q"]) == m["gif_frames"] == 8           # one frame per VGG-11 probe point
    assert all(-0.5 <= q < 0.9 for q in m["drawn_Q"])
    with Image.open(run.run_dirs("smoke", canonical=False)["figures"] / "04_knn_graph_layers.gif") as gif:
        assert gif.n_frames == 8
    expected_points = {"vgg11": 8, "resnet20": 10}
    for arch, record in m["models"].items():
        n = expected_points[arch]
        assert len(record["layers"]) == len(record["NMI"]) == len(record["ARI"]) == n
        assert all(0 <= v <= 1 for v in record["NMI"])
        assert all(-0.5 <= v <= 1 for v in record["ARI"])
        assert all(2 <= c <= 50 for c in record["communities"])
        # Louvain maximises Q: its partition beats the class partition on the same graph
        assert all(lv > cl for lv, cl in zip(record["Q_louvain"], record["Q_class"])), arch
        assert record["NMI"][-1] > 0.3, (arch, record["NMI"])   # communities relate to classes
    # Louvain rerun with five seeds at the first and last probe point of each model
    assert len(m["louvain_seeds"]) == 5
    assert set(m["nmi_over_seeds"]) == {"vgg11/1", "vgg11/8", "resnet20/1", "resnet20/10"}
    for low, high in m["nmi_over_seeds"].values():
        assert 0 <= low <= high <= 1
