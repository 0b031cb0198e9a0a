"""The README's Dask example, run for real: a dask.distributed LocalCluster with two worker
processes trains a tiny population through ``joblib.parallel_config(backend="dask")``, and its
weights are bit-identical to a sequential run's.

Needs the ``cluster`` extra (``pip install -e ".[cluster]"``; ``make setup`` installs it). It is
skipped without it, except under CI (``CI`` set), where a missing extra is an error."""

import os
import re
from pathlib import Path

import pytest
import torch

from modlib import population

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLE_CONFIG = 'config = population.PopulationConfig("fc", size=300)'
TINY_CONFIG = ('config = population.PopulationConfig("fc", size=4, hidden=6, dataset="digits", '
               'train_per_class=8, test_per_class=5, min_epochs=1, max_epochs=2, seed=5)')


def readme_example() -> str:
    """The Python block of the README's section "Populations of networks on a cluster"."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Populations of networks on a cluster", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the README's cluster section must hold exactly one Python block"
    return blocks[0]


def weights(pop) -> dict:
    return {(m, e): torch.cat([p.detach().flatten() for p in pop.load(m, e).parameters()])
            for m, e in zip(pop.table.member, pop.table.epoch)}


@pytest.fixture
def distributed():
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("dask.distributed is missing under CI: make setup installs the cluster "
                        "extra (pip install -e '.[cluster]')")
        pytest.skip("needs the cluster extra: pip install -e '.[cluster]'")


def test_readme_dask_example_gives_the_sequential_weights_bit_for_bit(distributed, tmp_path,
                                                                      monkeypatch):
    code = readme_example()
    assert EXAMPLE_CONFIG in code and 'backend="dask"' in code and "LocalCluster" in code
    code = code.replace(EXAMPLE_CONFIG, TINY_CONFIG)     # the same code, a tiny population

    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path / "sequential"))
    namespace = {}
    exec(TINY_CONFIG, {"population": population}, namespace)
    sequential = population.train_population(namespace["config"], n_jobs=1, progress=False)

    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path / "dask"))  # the workers inherit it
    namespace = {"__name__": "readme_example"}
    exec(compile(code, "README.md", "exec"), namespace)
    clustered = namespace["members"]

    assert clustered.folder.parent.parent == tmp_path / "dask"      # trained there, not loaded
    assert clustered.trained_epochs == sequential.trained_epochs > 0
    assert len(clustered.table) == len(sequential.table) == sequential.trained_epochs
    assert clustered.table.equals(sequential.table)
    a, b = weights(sequential), weights(clustered)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"member, epoch {key} differ"
