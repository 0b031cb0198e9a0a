"""docs/how_to_your_own_network.md runs: its Python code blocks are executed in order in one
namespace (as a reader pastes them into a session), and what its prose says about their
results is checked on the numbers they produce."""

from __future__ import annotations

import re

import matplotlib
import pytest

from modlib import data, paths

PAGE = "docs/how_to_your_own_network.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def code_blocks(text: str) -> list[str]:
    """The page's ```python fenced blocks, in order."""
    return _BLOCK.findall(text)


def test_code_blocks_are_found():
    blocks = code_blocks("x\n```python\na = 1\n```\n```bash\nls\n```\n```python\nb = 2\n```\n")
    assert blocks == ["a = 1\n", "b = 2\n"]


@pytest.fixture(scope="module")
def page_run():
    try:
        data.ensure_fashion_mnist(download=False)
    except FileNotFoundError as err:
        pytest.skip(f"Fashion-MNIST is not on disk ({err}): run `make data`")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    text = (paths.root() / PAGE).read_text(encoding="utf-8")
    blocks = code_blocks(text)
    namespace: dict = {"__name__": "how_to"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{PAGE}, code block {i + 1}", "exec"), namespace)
    plt.close("all")
    return text, blocks, namespace


def test_the_page_does_what_its_title_says(page_run):
    text, blocks, ns = page_run
    code = "\n".join(blocks)
    assert len(blocks) >= 5
    assert "torchvision.models.resnet18(weights=None, num_classes=10)" in code
    assert ns["probe_points"] == ["conv1", "layer1", "layer2", "layer3", "layer4", "avgpool",
                                  "fc"]
    # the activations are what the named modules output: (N, C*H*W) for 28x28 inputs
    shapes = {name: tuple(a.shape) for name, a in ns["activations"].items()}
    assert shapes == {"conv1": (500, 64 * 14 * 14), "layer1": (500, 64 * 7 * 7),
                      "layer2": (500, 128 * 4 * 4), "layer3": (500, 256 * 2 * 2),
                      "layer4": (500, 512), "avgpool": (500, 512), "fc": (500, 10)}
    assert ns["y"].bincount().tolist() == [50] * 10
    # the page links only pages that exist
    for target in re.findall(r"\]\(([^)#]+)", text):
        assert (paths.root() / "docs" / target).resolve().is_file(), target


def test_untrained_resnet_is_far_above_its_null(page_run):
    _, _, ns = page_run
    table = ns["table"]
    assert list(table.index) == ["input", *ns["probe_points"]]
    floor = 1 / (1 + 200)
    # "every probe point's Q lies far above its null band, each p at its floor"
    assert (table["z"] > 10).all(), table
    assert table["p"].tolist() == pytest.approx([floor] * len(table))
    assert (table["q"] > table["null_mean"] + 2 * table["null_std"]).all()
    # "starts where the pixels' Q is and falls off with depth, most at the classifier fc"
    q = table["q"]
    assert abs(q["conv1"] - q["input"]) < 0.05
    assert q["fc"] < q["layer4"] < q["input"]
    assert q.diff().abs().idxmax() == "fc"
    # the null: Q close to zero and slightly negative on a kNN graph
    assert (table["null_mean"].abs() < 0.02).all() and table["null_mean"].mean() < 0
    # the batched curve says the same
    curve = ns["curve"].set_index("name")
    assert (curve["Q_z"] > 10).all() and (curve["Q_std"] < 0.1).all()
    assert curve["Q_mean"]["fc"] < curve["Q_mean"]["conv1"]


def test_shuffled_labels_give_the_null_on_every_layer(page_run):
    _, _, ns = page_run
    mismatched = ns["mismatched"]
    assert list(mismatched.index) == ["input", *ns["probe_points"]]
    # "Every row is now at the null, the pixels included: z near zero, p far from its floor"
    assert (mismatched["z"].abs() < 3).all() and (mismatched["p"] > 0.01).all(), mismatched
    assert (mismatched["q"].abs() < 0.05).all()
    assert (ns["table"]["q"] - mismatched["q"] > 0.25).all()
