"""Test set-up.

Every test session writes its cache, figures and build output to a temporary folder, so tests
never touch the user's data/cache/, figures/, results/ or build/. Under pytest-xdist the workers
share one cache folder (its entries are locked, so concurrent use is safe) and keep their own
figures and build folders.

The smoke profile's networks are trained once per test run, by the session fixture
``smoke_models``, into that shared cache; every notebook smoke run and every test that needs them
loads them from there instead of training again. Two workers train them in opposite orders, so
each network is trained once and both cores are busy.

Markers (``make test`` runs all but ``paper_profile``; ``make test-fast`` only the unmarked ones):

- ``notebooks``: papermill runs of the notebooks in the smoke profile;
- ``slow``: unit tests that train for more than a few seconds or start Python subprocesses;
- ``paper_profile``: every notebook under ``--profile paper`` on the synthetic CIFAR-10 stand-in
  (``make test-paper``).
"""

import os

# one thread per worker process (and per notebook kernel, which inherits the environment): two
# workers on two cores, instead of every process spinning one OpenMP thread per core
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# and no process pools inside them: train.load_or_train_many trains one network at a time here,
# since the two test workers already keep both cores busy (joblib's cpu_count reads this)
os.environ.setdefault("LOKY_MAX_CPU_COUNT", "1")

import pytest  # noqa: E402

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


# the notebooks' runs, longest first (as measured on a 2-core machine); others follow in order
LONGEST_FIRST = ["06_layer_pruning", "08_complex_networks", "04_community_visualisation",
                 "07_training_dynamics", "03_graph_sparsification", "09_adversarial_inputs"]


def pytest_collection_modifyitems(config, items):
    """Start the notebook runs first, the longest of them first: the two workers share them and
    the short unit tests fill the gaps at the end (the order is the same on every worker)."""
    heavy = {"paper_profile": 0, "notebooks": 1, "slow": 2}

    def rank(item):
        group = min((heavy[m.name] for m in item.iter_markers() if m.name in heavy), default=3)
        notebook = getattr(item, "callspec", None) and item.callspec.params.get("notebook")
        order = (LONGEST_FIRST.index(notebook) if notebook in LONGEST_FIRST
                 else len(LONGEST_FIRST) + (0 if notebook else 1))
        return group, order

    items.sort(key=rank)      # stable: the collection order within each group


@pytest.fixture(scope="session", autouse=True)
def isolated_dirs(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if WORKER else base          # xdist: .../pytest-N/popen-gwK -> pytest-N
    root = tmp_path_factory.mktemp("modlib")
    saved = {k: os.environ.get(k) for k in
             ("MODLIB_CACHE_DIR", "MODLIB_FIGURES_DIR", "MODLIB_BUILD_DIR",
              "MODLIB_METRICS_DIR")}
    os.environ["MODLIB_CACHE_DIR"] = str(shared / "modlib-shared-cache")
    os.environ["MODLIB_FIGURES_DIR"] = str(root / "figures")
    os.environ["MODLIB_BUILD_DIR"] = str(root / "build")
    os.environ["MODLIB_METRICS_DIR"] = str(root / "results")
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def smoke_configs():
    """The ``TrainConfig`` of every network the smoke profile's notebooks ask for: the recipe,
    architectures and seeds of ``[smoke.all]`` in ``notebooks/profiles.toml``."""
    from modlib import train
    from modlib.companion import run

    smoke = run.load_profiles()["smoke"]["all"]
    seeds = smoke.get("seeds", [smoke.get("seed", 0)])
    return [train.RECIPES[smoke["recipe"]].config(arch, seed=seed)
            for seed in seeds for arch in smoke["archs"]]


@pytest.fixture(scope="session")
def smoke_models(isolated_dirs):
    """The smoke profile's trained networks, trained once per test run into the shared cache."""
    import torch

    from modlib import train

    torch.set_num_threads(1)
    configs = smoke_configs()
    if WORKER[2:].isdigit() and int(WORKER[2:]) % 2:
        configs.reverse()       # the other worker trains from the other end
    return [train.load_or_train(config, progress=False) for config in configs]
