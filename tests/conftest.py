"""Test set-up: every test session writes its cache, figures and build output to a temporary
folder, so tests never touch the user's data/cache/, figures/, results/ or build/."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("modlib")
    saved = {k: os.environ.get(k) for k in
             ("MODLIB_CACHE_DIR", "MODLIB_FIGURES_DIR", "MODLIB_BUILD_DIR",
              "MODLIB_METRICS_DIR")}
    os.environ["MODLIB_CACHE_DIR"] = str(root / "cache")
    os.environ["MODLIB_FIGURES_DIR"] = str(root / "figures")
    os.environ["MODLIB_BUILD_DIR"] = str(root / "build")
    os.environ["MODLIB_METRICS_DIR"] = str(root / "results")
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
