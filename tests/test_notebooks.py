"""Every notebook runs headless through the driver in the smoke profile, and the numbers it
records are checked against sane ranges (one ``check(metrics)`` per notebook in
``tests/notebook_checks/NN_slug.py``). Also: the driver's failures on bad parameters, and that
no run but the plain default profile touches ``figures/``."""

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from modlib import paths
from modlib.companion import run

NOTEBOOKS = [p.stem for p in run.all_notebooks()]
# run twice over in one kernel by test_rerunning_every_cell_gives_the_same_outputs, which is also
# their smoke run (the same checks), so that each notebook's cells run once per test session
RERUN_TWICE = ["07_training_dynamics", "08_complex_networks", "09_adversarial_inputs",
               "10_architecture_metrics"]


def drive(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "modlib.companion.run", *args], capture_output=True,
                          text=True, timeout=timeout, env=os.environ.copy(), cwd=paths.root())


CHECKS_DIR = Path(__file__).parent / "notebook_checks"


def metrics_check(notebook: str):
    """The ``check`` function of ``tests/notebook_checks/<notebook>.py``."""
    path = CHECKS_DIR / f"{notebook}.py"
    assert path.is_file(), f"add range checks for {notebook}'s metrics in {path}"
    spec = importlib.util.spec_from_file_location(f"notebook_checks_{notebook}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.check


DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")
ARXIV_ID = re.compile(r"\b\d{4}\.\d{4,5}\b")


def unsupported_prose_numbers(executed: Path) -> list[str]:
    """Decimal numbers in the static Markdown cells of an executed notebook that appear nowhere
    in its code or outputs: numbers typed into prose instead of generated from the run.

    Generated Markdown (``display(Markdown(...))``) is an output, so its numbers count as the
    run's; a constant of the method or a paper's reported value is fine when the notebook's code
    holds it (and so shows where it comes from). arXiv ids are not numbers.
    """
    nb = nbformat.read(executed, as_version=4)
    evidence = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        evidence.append(cell.source)
        for output in cell.get("outputs", []):
            evidence.append(output.get("text", ""))
            for value in output.get("data", {}).values():
                evidence.append(value if isinstance(value, str) else json.dumps(value))
    found = set(DECIMAL.findall(" ".join(evidence)))
    missing = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            text = ARXIV_ID.sub(" ", cell.source)
            missing += [n for n in DECIMAL.findall(text) if n not in found]
    return missing


def test_prose_number_check_catches_a_typed_number(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("Q rises to 0.77 (arXiv 2111.12485)."),
                nbformat.v4.new_code_cell("print(q)", outputs=[nbformat.v4.new_output(
                    "stream", name="stdout", text="Q = 0.773\n")])]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    assert unsupported_prose_numbers(tmp_path / "nb.ipynb") == ["0.77"]
    nb.cells[1].outputs[0].text = "Q = 0.77\n"
    nbformat.write(nb, tmp_path / "nb.ipynb")
    assert unsupported_prose_numbers(tmp_path / "nb.ipynb") == []


def test_every_check_belongs_to_a_notebook():
    assert {p.stem for p in CHECKS_DIR.glob("*.py")} <= set(NOTEBOOKS)


def run_and_read(notebook: str, profile: str, *overrides: str, timeout: int = 600):
    """Run one notebook through the driver under ``profile`` (non-canonical), check that it
    succeeded and that its prose holds no number the run does not show; return the run's
    folders and its metrics."""
    result = drive(notebook, "--profile", profile, *overrides, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    dirs = run.run_dirs(profile, canonical=False)
    executed = dirs["notebooks"] / f"{notebook}.ipynb"
    assert executed.is_file()
    typed = unsupported_prose_numbers(executed)
    assert not typed, f"numbers in {notebook}'s prose that the run does not show: {typed}"
    return dirs, json.loads((dirs["metrics"] / f"{notebook}.json").read_text())


@pytest.mark.notebooks
@pytest.mark.parametrize("notebook", [n for n in NOTEBOOKS if n not in RERUN_TWICE])
def test_notebook_smoke_run(notebook, smoke_models):
    dirs, metrics = run_and_read(notebook, "smoke")
    check_smoke_outputs(notebook, dirs, metrics)


def check_smoke_outputs(notebook: str, dirs: dict, metrics: dict) -> None:
    """The smoke run's recorded numbers are in range and its figures exist, outside figures/."""
    metrics_check(notebook)(metrics)
    manifest = json.loads((dirs["figures"] / "MANIFEST.json").read_text())
    figures = [name for name, e in manifest.items() if e["notebook"].endswith(f"{notebook}.ipynb")]
    assert figures and all((dirs["figures"] / name).is_file() for name in figures)
    assert not (paths.figures_dir() / "MANIFEST.json").exists(), "a smoke run wrote figures/"


@pytest.mark.notebooks
def test_bad_value_fails_with_a_clear_message():
    result = drive("05_modularity_curves", "--profile", "smoke", "-p", "k", "0")
    assert result.returncode == 1
    assert "05_modularity_curves failed in cell" in result.stderr
    assert "k=0 is not allowed: must be an integer in [1, 49]" in result.stderr


@pytest.mark.slow
def test_unknown_name_fails_before_running():
    result = drive("05_modularity_curves", "--profile", "smoke", "-p", "kk", "5", timeout=60)
    assert result.returncode == 1
    assert "unknown parameter 'kk' for 05_modularity_curves" in result.stderr
    assert "[smoke]" not in result.stdout                      # nothing was started


@pytest.mark.notebooks
def test_readme_example_leaves_figures_untouched(smoke_models):
    """The README's example commands (a smoke run, an override of the default profile) write
    below build/<profile>/ and leave the committed figures/ and results/ byte-identical."""
    committed = [paths.root() / "figures", paths.root() / "results"]

    def digest():
        files = sorted(p for folder in committed if folder.is_dir() for p in folder.rglob("*")
                       if p.is_file())
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    before = digest()
    env = {k: v for k, v in os.environ.items() if k not in ("MODLIB_FIGURES_DIR",
                                                             "MODLIB_METRICS_DIR")}
    # the smoke profile's own example is test_notebook_smoke_run; here the default profile with
    # overrides (small enough to be quick, the smoke models come from the test session's cache)
    args = ["05_modularity_curves", "-p", "recipe", "smoke", "-p", "archs", "['vgg11']",
            "-p", "seeds", "[0, 1]",
            "-p", "graph_size", "60", "-p", "n_batches", "1", "-p", "n_sweep", "[30, 60]",
            "-p", "k_sweep", "[3, 5]", "-p", "sweep_arch", "vgg11"]
    result = subprocess.run([sys.executable, "-m", "modlib.companion.run", *args], capture_output=True,
                            text=True, timeout=600, env=env, cwd=paths.root())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "figures/ and results/ are written only by the default profile" in result.stdout
    assert digest() == before


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_default_run_prose_numbers_come_from_the_run(notebook):
    """The same check on the executed default-profile notebooks, where a `make figures` made them
    on this machine (CI checks the smoke runs above)."""
    executed = paths.root() / "build" / "notebooks" / f"{notebook}.ipynb"   # not the test's tmp
    if not executed.is_file():
        pytest.skip(f"{notebook} has not been run with the default profile here (make figures)")
    typed = unsupported_prose_numbers(executed)
    assert not typed, f"numbers in {notebook}'s prose that the run does not show: {typed}"


HEX_ADDRESS = re.compile(r"0x[0-9a-f]{6,}")


def _shown_text(cell) -> list[str]:
    """What a code cell displays as text (results and displayed objects, not streams: those
    carry timings and cache messages that legitimately differ between two passes)."""
    shown = []
    for output in cell.get("outputs", []):
        if output.get("output_type") in ("execute_result", "display_data"):
            for mime in ("text/markdown", "text/plain"):
                if mime in output.get("data", {}):
                    shown.append(HEX_ADDRESS.sub("0x…", output["data"][mime]))
    return shown


@pytest.mark.notebooks
@pytest.mark.parametrize("notebook", RERUN_TWICE)
def test_rerunning_every_cell_gives_the_same_outputs(notebook, tmp_path, smoke_models):
    """Issue 17: "Run all" twice in one kernel shows the same numbers; no cell depends on state
    that an earlier pass left behind. The smoke profile's cells run twice over in one kernel
    (the parameters once, as papermill injects them), and every displayed text of the second
    pass equals the first's. This is also these notebooks' smoke run: the prose, metrics and
    figure checks of :func:`test_notebook_smoke_run` apply to it."""
    import copy

    import papermill
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    [(path, parameters)] = run.plan(run.resolve([notebook]), "smoke", [])
    nb = parameterize_notebook(load_notebook_node(str(path)), parameters,
                               kernel_name=run.KERNEL, language="python")
    injected = next(i for i, c in enumerate(nb.cells)
                    if "injected-parameters" in c.metadata.get("tags", []))
    body = nb.cells[injected + 1:]
    again = copy.deepcopy(body)
    for cell in again:
        cell["id"] = f"{cell['id']}-again"[-64:]          # cell ids must stay unique
    nb.cells = nb.cells[:injected + 1] + body + again
    doubled = tmp_path / f"{notebook}.ipynb"
    nbformat.write(nb, doubled)
    dirs = {name: tmp_path / name for name in ("notebooks", "figures", "metrics")}
    for folder in dirs.values():
        folder.mkdir()
    start = time.time()
    with run._kernel_environment(dirs):
        executed = papermill.execute_notebook(str(doubled), str(dirs["notebooks"] / doubled.name),
                                              kernel_name=run.KERNEL, cwd=str(path.parent),
                                              progress_bar=False, log_output=False)
    cells = executed.cells[injected + 1:]
    first, second = cells[:len(body)], cells[len(body):]
    for number, (a, b) in enumerate(zip(first, second), start=injected + 2):
        if a.cell_type == "code":
            assert _shown_text(b) == _shown_text(a), f"{notebook}: cell {number} differs on a rerun"
    typed = unsupported_prose_numbers(dirs["notebooks"] / doubled.name)
    assert not typed, f"numbers in {notebook}'s prose that the run does not show: {typed}"
    run.update_manifest(path, parameters, "smoke", start - 1, dirs["figures"])   # as the driver
    check_smoke_outputs(notebook, dirs, json.loads((dirs["metrics"] / f"{notebook}.json")
                                                   .read_text()))
