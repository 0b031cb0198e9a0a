"""The driver's checks (no notebook is executed here) and the notebooks' conventions."""

import ast
import json

import nbformat
import pytest

from modlib import paths
from modlib.companion import run

NOTEBOOKS = run.all_notebooks()


def test_there_are_notebooks():
    assert [p.stem for p in NOTEBOOKS][:1] == ["01_train_models"]
    assert "05_modularity_curves" in [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_conventions(notebook):
    nb = nbformat.read(notebook, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    for word in ("smoke", "default", "paper"):
        assert word in nb.cells[0].source, f"first cell must give the runtime of {word}"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and nb.cells[1] is tagged[0]
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"
    # every parameter is annotated, commented, and understood by papermill
    assignments = [line for line in tagged[0].source.splitlines() if line.strip()]
    for line in assignments:
        code, _, comment = line.partition("  # ")
        assert isinstance(ast.parse(code).body[0], ast.AnnAssign), line
        assert comment.strip(), f"parameter without a comment: {line}"
    declared = run.declared_parameters(notebook)
    assert len(declared) == len(assignments), "papermill could not parse some parameter lines"
    assert "profile" in declared and ({"seed", "seeds"} & set(declared)), "no seed parameter"


# How many graphs per layer a notebook draws is sized to its runtime budget: 07 and 09 repeat
# every graph over seeds (and epochs or attacks), so they draw fewer per network.
SIZED_PER_NOTEBOOK = {"n_batches"}


def test_shared_parameters_have_the_same_defaults_everywhere():
    # notebooks must ask for the same models by default, or the checkpoint cache would miss
    seen = {}
    for notebook in NOTEBOOKS:
        for name, info in run.declared_parameters(notebook).items():
            if name not in SIZED_PER_NOTEBOOK:
                seen.setdefault(name, {})[notebook.stem] = info["default"]
    for name, defaults in seen.items():
        assert len(set(defaults.values())) == 1, f"{name} differs: {defaults}"


def test_profiles_only_name_declared_parameters():
    profiles = run.load_profiles()
    assert set(profiles) <= set(run.PROFILES)
    for profile in run.PROFILES:
        for notebook in NOTEBOOKS:   # raises DriverError on an undeclared name
            run.profile_parameters(profile, notebook, run.declared_parameters(notebook))


def test_unknown_parameter_is_rejected_before_running():
    notebook = run.resolve(["05"])
    with pytest.raises(run.DriverError, match="unknown parameter 'kk' for 05_modularity_curves"):
        run.plan(notebook, "smoke", [("kk", "5")])


def test_values_are_converted_and_type_checked():
    notebook = run.resolve(["05_modularity_curves"])
    [(_, parameters)] = run.plan(notebook, "smoke", [("k", "5"), ("k_sweep", "[3, 4]"),
                                                     ("recipe", "cpu-3epoch")])
    assert parameters["k"] == 5 and parameters["k_sweep"] == [3, 4]
    assert parameters["recipe"] == "cpu-3epoch" and parameters["profile"] == "smoke"
    assert parameters["graph_size"] == 50                      # from the smoke profile
    with pytest.raises(run.DriverError, match="k is declared as int"):
        run.plan(notebook, "smoke", [("k", "five")])
    with pytest.raises(run.DriverError, match="k is declared as int, got float 2.5"):
        run.plan(notebook, "smoke", [("k", "2.5")])
    with pytest.raises(run.DriverError, match="--profile 'fast'"):
        run.plan(notebook, "fast", [])


def test_resolve_names():
    assert run.resolve(["01"]) == run.resolve(["01_train_models"]) == \
        run.resolve(["notebooks/01_train_models.ipynb"])
    with pytest.raises(run.DriverError, match="not found; available: 01_train_models"):
        run.resolve(["99"])


def test_manifest_records_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("MODLIB_FIGURES_DIR", str(tmp_path))
    (tmp_path / "05_curve.png").write_bytes(b"png")
    (tmp_path / "01_other.png").write_bytes(b"png")
    notebook = run.resolve(["05"])[0]
    recorded = run.update_manifest(notebook, {"k": 5}, "smoke", since=0)
    assert recorded == ["05_curve.png"]
    manifest = json.loads((paths.figures_dir() / "MANIFEST.json").read_text())
    entry = manifest["05_curve.png"]
    assert entry["notebook"] == "notebooks/05_modularity_curves.ipynb"
    assert entry["parameters"] == {"k": 5} and entry["profile"] == "smoke"
    assert len(entry["commit"].split("+")[0]) in (40, 7) or entry["commit"] == "unknown"


def _validation_namespace(notebook, profile):
    """Run a notebook's parameters cell, the profile's values on top (as papermill injects
    them), then its set-up and validation cell (the first code cell after the parameters), in a
    fresh namespace; nothing else of the notebook runs."""
    nb = nbformat.read(notebook, as_version=4)
    parameters = run.plan([notebook], profile, [])[0][1]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    namespace = {}
    exec(compile(code[0].source, f"{notebook.stem}[parameters]", "exec"), namespace)
    namespace.update(parameters)
    exec(compile(code[1].source, f"{notebook.stem}[validation]", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("profile", run.PROFILES)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_profile_passes_every_notebooks_validation(notebook, profile, monkeypatch):
    """A profile cannot contradict a notebook: its values pass the notebook's own validation
    (cell 3), which loads no data and trains nothing, so the paper profile is checked too."""
    monkeypatch.setenv("MODLIB_HEADLESS", "1")
    _validation_namespace(notebook, profile)


def test_recipes_are_what_the_profiles_say():
    profiles = run.load_profiles()
    assert profiles["smoke"]["all"]["recipe"] == "smoke"
    assert profiles["paper"]["all"]["recipe"] == "paper-cifar10"


def test_non_default_runs_write_below_build(tmp_path, monkeypatch):
    monkeypatch.setenv("MODLIB_BUILD_DIR", str(tmp_path / "build"))
    canonical = run.output_dirs("default", [])
    assert canonical["figures"] == paths.figures_dir()
    assert canonical["metrics"] == paths.metrics_dir()
    for profile, overrides in (("smoke", []), ("default", [("k", "5")]), ("paper", [])):
        dirs = run.output_dirs(profile, overrides)
        assert all(d.is_relative_to(tmp_path / "build" / profile) for d in dirs.values())


def test_a_sweep_of_one_value_is_refused_before_any_work(monkeypatch):
    monkeypatch.setenv("MODLIB_HEADLESS", "1")
    notebook = run.resolve(["05"])[0]
    nb = nbformat.read(notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    namespace = {}
    exec(compile(code[0].source, "parameters", "exec"), namespace)
    namespace["k_sweep"] = [3]
    with pytest.raises(ValueError, match=r"k_sweep=\[3\] and n_sweep=.* at least two"):
        exec(compile(code[1].source, "validation", "exec"), namespace)


MAX_CELL_LINES = 15


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_cells_are_short(notebook):
    """Issue 17: a notebook reads as short cells, each introduced by a sentence. Every code cell
    but the parameters and validation cells (cells 2 and 3) has at most 15 lines; what is longer
    belongs in modlib (a computation in its concept's module, a figure in ``plots``)."""
    nb = nbformat.read(notebook, as_version=4)
    long = [(i + 1, len(c.source.splitlines())) for i, c in enumerate(nb.cells)
            if i not in (1, 2) and c.cell_type == "code"
            and len(c.source.splitlines()) > MAX_CELL_LINES]
    assert not long, (f"{notebook.stem}: code cells (number, lines) over {MAX_CELL_LINES} "
                      f"lines: {long}")
