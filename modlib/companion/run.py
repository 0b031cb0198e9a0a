"""The papermill driver: run notebooks headless with a profile and parameter overrides.

Usage::

    python -m modlib.companion.run                                  # every notebook, default
    python -m modlib.companion.run 05_modularity_curves --profile smoke -p k 5
    python -m modlib.companion.run 01 05 -p seed 1                  # by number
    python -m modlib.companion.run --list                           # notebooks and their parameters

What it does, in order:

1. finds the notebooks (``notebooks/NN_slug.ipynb``; a name may be the stem, ``NN`` or a path);
2. reads each notebook's ``parameters`` cell (``papermill.inspect_notebook``) and **rejects unknown
   parameter names and values of the wrong type before anything runs** (papermill itself only
   warns);
3. builds each notebook's parameters: the profile's values from ``notebooks/profiles.toml``, then
   the ``-p`` overrides, which always win;
4. executes the notebooks one after the other; the first failure stops the run with the
   notebook, the cell and the error, and a non-zero exit;
5. records, in the figures folder's ``MANIFEST.json``, which notebook, parameters and commit made
   each figure.

Where a run writes (:func:`run_dirs`): only the ``default`` profile without ``-p``
overrides writes ``figures/``, ``results/`` and ``build/notebooks/``; every other run writes
``build/<profile>/figures/``, ``build/<profile>/metrics/`` and ``build/<profile>/notebooks/``, so
trying a smoke run or an override never touches the committed figures.

Feedback: the driver prints which notebook runs and, on a terminal, papermill's bar of the cell
being executed; training and other long loops draw their progress bars on the same terminal
(``modlib.progress``), not inside the executed notebook.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import logging
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from .. import paths, store

PROFILES = ("smoke", "default", "paper")
FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".gif")
KERNEL = "modlib"   # the Jupyter kernel that `make setup` registers inside .venv


class DriverError(Exception):
    """A problem found before or while running notebooks; the message is for the user."""


# --------------------------------------------------------------------------------------------
# Notebooks and their parameters


def all_notebooks() -> list[Path]:
    """``notebooks/NN_slug.ipynb``, in numeric order."""
    return sorted(paths.notebooks_dir().glob("[0-9][0-9]_*.ipynb"))


def resolve(names: list[str]) -> list[Path]:
    """Notebook paths for names given as stem, ``NN`` prefix, or path; all when ``names`` is empty.

    Raises:
        DriverError: a name matches no notebook, or several.
    """
    available = all_notebooks()
    if not names:
        return available
    chosen = []
    for name in names:
        stem = Path(name).stem
        matches = [p for p in available if p.stem == stem or p.stem.split("_")[0] == stem]
        if len(matches) != 1:
            listing = ", ".join(p.stem for p in available)
            raise DriverError(f"notebook {name!r} {'is ambiguous' if matches else 'not found'}; "
                              f"available: {listing}")
        chosen.append(matches[0])
    return chosen


def declared_parameters(notebook: Path) -> dict[str, dict]:
    """``{name: {"type": ..., "default": ..., "help": ...}}`` from the notebook's parameters cell.

    Raises:
        DriverError: the notebook has no cell tagged ``parameters``.
    """
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    if not declared:
        raise DriverError(f"{notebook.name} has no cell tagged 'parameters'")
    return {name: {"type": info["inferred_type_name"], "default": info["default"],
                   "help": info["help"]} for name, info in declared.items()}


def parse_value(name: str, text: str, type_name: str):
    """Convert the text of ``-p name text`` to the declared type.

    ``int``, ``float``, ``bool`` and ``list``/``dict`` values are read as Python literals
    (``5``, ``0.5``, ``True``, ``[3, 5]``); ``str`` parameters take the text as it is.

    Raises:
        DriverError: the text is not a value of the declared type.
    """
    base = type_name.split("[")[0].strip().lower()
    if base == "str":
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if base == "bool" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise DriverError(f"-p {name} {text}: {name} is declared as {type_name}, and {text!r} "
                          "is not a value of that type") from None
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "list": isinstance(value, (list, tuple)),
        "dict": isinstance(value, dict),
    }.get(base, True)
    if not ok:
        raise DriverError(f"-p {name} {text}: {name} is declared as {type_name}, got "
                          f"{type(value).__name__} {value!r}")
    if base == "float":
        return float(value)
    if base == "list":
        return list(value)
    return value


def load_profiles() -> dict:
    """``notebooks/profiles.toml`` as a dict (``{profile: {"all": {...}, stem: {...}}}``)."""
    path = paths.notebooks_dir() / "profiles.toml"
    return tomllib.loads(path.read_text()) if path.is_file() else {}


def profile_parameters(profile: str, notebook: Path, declared: dict) -> dict:
    """A profile's values for one notebook: its ``all`` table (only the names the notebook
    declares), then the notebook's own table.

    Raises:
        DriverError: the notebook's own table names a parameter the notebook does not declare.
    """
    table = load_profiles().get(profile, {})
    values = {k: v for k, v in table.get("all", {}).items() if k in declared}
    own = table.get(notebook.stem, {})
    unknown = sorted(set(own) - set(declared))
    if unknown:
        raise DriverError(f"profiles.toml [{profile}.{notebook.stem}] sets {unknown}, which "
                          f"{notebook.name} does not declare")
    values.update(own)
    if "profile" in declared:
        values["profile"] = profile
    return values


def plan(notebooks: list[Path], profile: str, overrides: list[tuple[str, str]]) -> list[tuple]:
    """Check everything and return ``[(notebook, parameters)]`` without running anything.

    Raises:
        DriverError: unknown profile or parameter names, or values of the wrong type.
    """
    if profile not in PROFILES:
        raise DriverError(f"--profile {profile!r} is not allowed: choose one of {PROFILES}")
    planned = []
    for notebook in notebooks:
        declared = declared_parameters(notebook)
        parameters = profile_parameters(profile, notebook, declared)
        for name, text in overrides:
            if name not in declared:
                raise DriverError(f"unknown parameter {name!r} for {notebook.stem}; it declares: "
                                  f"{', '.join(declared)}")
            parameters[name] = parse_value(name, text, declared[name]["type"])
        planned.append((notebook, parameters))
    return planned


# --------------------------------------------------------------------------------------------
# Running


def install_kernel() -> Path:
    """Register the Jupyter kernel ``modlib`` inside this Python environment (``sys.prefix``, so a
    user's own kernels are untouched); its start-up warnings are silenced (the kernel talks over
    loopback TCP, which ipykernel warns about at every start). Returns the kernelspec folder.
    """
    from ipykernel.kernelspec import install

    folder = Path(install(kernel_name=KERNEL, display_name="Python (modlib)", prefix=sys.prefix))
    spec_path = folder / "kernel.json"
    spec = json.loads(spec_path.read_text())
    if "--Application.log_level=40" not in spec["argv"]:
        spec["argv"].append("--Application.log_level=40")
    store.write_json(spec_path, spec)
    return folder


def run_dirs(profile: str, canonical: bool) -> dict[str, Path]:
    """Where one driver run writes, ``{"notebooks", "figures", "metrics"}``: a ``canonical`` run
    (default profile, no overrides) ``build/notebooks/``, ``figures/`` and ``results/``, any other
    below ``build/<profile>/``, so it never overwrites the committed figures and numbers."""
    if canonical:
        return {"notebooks": paths.build_dir() / "notebooks", "figures": paths.figures_dir(),
                "metrics": paths.metrics_dir()}
    base = paths.build_dir() / profile
    return {"notebooks": base / "notebooks", "figures": base / "figures",
            "metrics": base / "metrics"}


@contextlib.contextmanager
def environment(settings: dict[str, str]):
    """Set environment variables for the ``with`` block (this process and the kernels it
    starts), then restore the previous values."""
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update({name: str(value) for name, value in settings.items()})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def output_dirs(profile: str, overrides) -> dict[str, Path]:
    """Where a run writes: ``figures/`` and ``results/`` only for the plain default profile."""
    return run_dirs(profile, canonical=(profile == "default" and not overrides))


def _kernel_environment(dirs: dict[str, Path]):
    """Point the kernel's figures and metrics at ``dirs`` and mark it headless (progress bars on
    the terminal, not in the notebook); the environment is restored afterwards."""
    return environment({"MODLIB_FIGURES_DIR": str(dirs["figures"]),
                        "MODLIB_METRICS_DIR": str(dirs["metrics"]),
                        "MODLIB_HEADLESS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"})


def execute(notebook: Path, parameters: dict, dirs: dict[str, Path] | None = None) -> Path:
    """Run one notebook with papermill; return the executed copy.

    ``dirs`` (from :func:`output_dirs`) says where the executed notebook, figures and metrics go;
    by default those of the plain default profile.

    Raises:
        DriverError: the kernel is not installed, or a cell failed (the message names the cell
            and the error).
    """
    import papermill
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    from papermill.exceptions import PapermillExecutionError

    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        raise DriverError(f"the Jupyter kernel {KERNEL!r} is not installed: run `make setup` "
                          "(or `python -m modlib.companion.run --install-kernel`)") from None
    dirs = dirs or run_dirs("default", canonical=True)
    output = dirs["notebooks"] / notebook.name
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    # papermill and the kernel client log at INFO/WARNING level about kernel start-up details
    # that say nothing to a user; cell errors still arrive as PapermillExecutionError
    for name in ("papermill", "traitlets", "nbclient"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with _kernel_environment(dirs):
            papermill.execute_notebook(str(notebook), str(output), parameters=parameters,
                                       kernel_name=KERNEL, cwd=str(notebook.parent),
                                       progress_bar=sys.stderr.isatty(), log_output=False,
                                       # ipykernel forwards writes to the process's own file
                                       # descriptors into the notebook; without that, progress
                                       # bars drawn on sys.__stderr__ reach the user's terminal
                                       extra_arguments=["--IPKernelApp.capture_fd_output=False"])
    except PapermillExecutionError as err:
        raise DriverError(f"{notebook.stem} failed in cell {err.cell_index} (execution count "
                          f"{err.exec_count}): {err.ename}: {err.evalue}\n"
                          f"executed copy with the traceback: {output}") from None
    return output


def git_commit() -> str:
    """The current commit, with ``+dirty`` when tracked files outside ``figures/`` (which the run
    itself rewrites) have changes; ``unknown`` without git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.root(),
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":!figures"],
                               cwd=paths.root(), capture_output=True, text=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def update_manifest(notebook: Path, parameters: dict, profile: str, since: float,
                    figures_dir: Path | None = None) -> list[str]:
    """Record every figure of this notebook written since ``since`` in ``MANIFEST.json`` of
    ``figures_dir`` (default ``figures/``).

    A figure belongs to notebook ``NN_slug`` when its name starts with ``NN_``. ``parameters`` are
    the values the driver passed (profile and overrides); the others are the notebook's defaults at
    ``commit``. Entries of other notebooks are kept. Returns the recorded file names.
    """
    figures_dir = figures_dir or paths.figures_dir()
    manifest_path = figures_dir / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    number = notebook.stem.split("_")[0]
    commit = git_commit()
    recorded = []
    for figure in sorted(figures_dir.glob(f"{number}_*")):
        if figure.suffix in FIGURE_SUFFIXES and figure.stat().st_mtime >= since:
            manifest[figure.name] = {"notebook": f"notebooks/{notebook.name}", "profile": profile,
                                     "parameters": parameters, "commit": commit}
            recorded.append(figure.name)
    store.write_json(manifest_path, manifest)
    return recorded


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modlib.companion.run",
                                     description="Run the notebooks headless with papermill.")
    parser.add_argument("notebooks", nargs="*", help="stems, NN numbers or paths (default: all)")
    parser.add_argument("--profile", default="default",
                        help="smoke (CI, seconds) | default (laptop CPU, minutes) | paper (GPU)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="override one parameter (repeatable)")
    parser.add_argument("--list", action="store_true", help="list notebooks and parameters")
    parser.add_argument("--install-kernel", action="store_true",
                        help=f"register the Jupyter kernel {KERNEL!r} in this environment")
    args = parser.parse_args(argv)
    if args.install_kernel:
        print(f"installed kernel {KERNEL!r} in {install_kernel()}")
        return 0
    try:
        notebooks = resolve(args.notebooks)
        if args.list:
            for notebook in notebooks:
                print(notebook.stem)
                for name, info in declared_parameters(notebook).items():
                    print(f"    {name}: {info['type']} = {info['default']}  # {info['help']}")
            return 0
        overrides = [tuple(p) for p in args.parameter]
        planned = plan(notebooks, args.profile, overrides)
        dirs = output_dirs(args.profile, overrides)
        if dirs["figures"] != paths.figures_dir():
            print(f"[{args.profile}] writes to {dirs['notebooks'].parent} (figures/ and "
                  "results/ are written only by the default profile without -p)", flush=True)
        for i, (notebook, parameters) in enumerate(planned, start=1):
            shown = ", ".join(f"{k}={v!r}" for k, v in parameters.items())
            print(f"[{args.profile}] {i}/{len(planned)} {notebook.stem}: {shown}", flush=True)
            start = time.time()
            output = execute(notebook, parameters, dirs)
            figures = update_manifest(notebook, parameters, args.profile, start - 1,
                                      dirs["figures"])
            print(f"    done in {time.time() - start:.0f} s -> {output}"
                  f"{'' if not figures else '; figures: ' + ', '.join(figures)}", flush=True)
    except DriverError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
