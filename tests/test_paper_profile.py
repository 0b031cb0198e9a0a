"""Every notebook runs end to end under ``--profile paper`` on the synthetic CIFAR-10 stand-in.

The paper profile needs a GPU and the real CIFAR-10, so these runs replace only what makes it
big: the training recipe becomes ``paper-synthetic`` (paper A's optimiser, schedule and
augmentation on ``cifar10-synthetic``, generated images in CIFAR-10's file layout, two epochs at
width 0.125) and the graph sizes, sweeps and populations shrink (``TINY`` below). Everything else
is the paper profile's: its architectures (VGG-16, ResNet-56), its pruning from scratch, its
3 x 32 x 32 inputs. The runs' numbers mean nothing; the test checks that every cell runs, that
the run wrote its metrics and figures below ``build/paper/``, that the stand-in was used and
that the real CIFAR-10's cache path was never written. ``make test-paper`` runs them.
"""

import json

import pytest

from modlib import data, paths
from modlib.companion import run

from cifar_standin import ensure_synthetic_cifar10
from test_notebooks import NOTEBOOKS, run_and_read

# the paper profile's values that these runs override: for every notebook that declares them,
# then per notebook; only the names a notebook declares are passed (the test below checks that
# the recipe always is)
TINY_ALL = {"recipe": "paper-synthetic", "seeds": [0, 1], "graph_size": 60, "n_batches": 2}
TINY = {
    "02_similarity_histograms": {"bins": 20, "tau_sweep": [0.5, 0.8]},
    "03_graph_sparsification": {"k_sweep": [3, 5], "tau": 0.8, "tau_sweep": [0.5, 0.8],
                                "p": 0.05, "p_sweep": [0.05, 0.1]},
    "04_community_visualisation": {"draw_size": 40},
    "05_modularity_curves": {"graph_size": 50, "k_sweep": [3, 5], "n_sweep": [30, 60]},
    "06_layer_pruning": {"graph_size": 50, "random_seeds": [0, 1], "random_draws": 2,
                         "sweep_sizes": [1]},
    "08_complex_networks": {"population_sizes": [12, 6], "member_per_class": 20, "n_jobs": 1,
                            "n_boot": 50},
    "09_adversarial_inputs": {"pgd_steps": 3},
    "10_architecture_metrics": {"tv_archs": ["resnet18", "mobilenet_v2"], "sizes": [32],
                                "graph_size": 50},
}


def tiny_overrides(notebook: str) -> list[str]:
    """``-p NAME VALUE`` arguments of the driver for one notebook."""
    declared = run.declared_parameters(run.resolve([notebook])[0])
    values = {k: v for k, v in (TINY_ALL | TINY.get(notebook, {})).items() if k in declared}
    return [arg for name, value in values.items()
            for arg in ("-p", name, value if isinstance(value, str) else repr(value))]


@pytest.fixture(scope="session")
def synthetic_cifar10(isolated_dirs):
    """The stand-in's archive, written once into the shared test cache."""
    return ensure_synthetic_cifar10()


def test_tiny_overrides_name_declared_parameters_only():
    assert set(TINY) <= set(NOTEBOOKS)
    for notebook in NOTEBOOKS:
        declared = run.declared_parameters(run.resolve([notebook])[0])
        args = tiny_overrides(notebook)
        names = args[1::3]
        assert set(names) <= set(declared) and "recipe" in names, notebook
    assert tiny_overrides("05_modularity_curves")[:3] == ["-p", "recipe", "paper-synthetic"]


@pytest.mark.paper_profile
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_paper_profile_run(notebook, synthetic_cifar10):
    dirs, metrics = run_and_read(notebook, "paper", *tiny_overrides(notebook), timeout=900)
    assert metrics.get("profile", "paper") == "paper"
    if "recipe" in metrics:
        assert metrics["recipe"] == "paper-synthetic"
    manifest = json.loads((dirs["figures"] / "MANIFEST.json").read_text())
    figures = [name for name, e in manifest.items() if e["notebook"].endswith(f"{notebook}.ipynb")]
    assert figures and all((dirs["figures"] / name).is_file() for name in figures)
    # the stand-in, never the real set: nothing at CIFAR-10's cache paths
    cache = paths.cache_dir()
    assert not (cache / data.CIFAR10_ARCHIVE).exists()
    assert not (cache / data.CIFAR10_FOLDER).exists()
    assert not (paths.figures_dir() / "MANIFEST.json").exists(), "a paper run wrote figures/"
