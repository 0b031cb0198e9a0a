"""The papermill driver: run notebooks headless with a profile and parameter overrides.

Usage::

    python -m modlib.run                                  # every notebook, default profile
    python -m modlib.run 05_modularity_curves --profile smoke -p k 5
    python -m modlib.run 01 05 -p seed 1                  # by number
    python -m modlib.run --list                           # notebooks and their parameters

What it does, in order:

1. finds the notebooks (``notebooks/NN_slug.ipynb``; a name may be the stem, ``NN`` or a path);
2. reads each notebook's ``parameters`` cell (``papermill.inspect_notebook``) and **rejects unknown
   parameter names and values of the wrong type before anything runs** (papermill itself only
   warns);
3. builds each notebook's parameters: the profile's values from ``notebooks/profiles.toml``, then
   the ``-p`` overrides, which always win;
4. executes the notebooks one after the other into ``build/notebooks/``; the first failure stops
   the run with the notebook, the cell and the error, and a non-zero exit;
5. records, in ``figures/MANIFEST.json``, which notebook, parameters and commit made each figure.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from . import paths, store

PROFILES = ("smoke", "default", "paper")
FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".gif")


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


def execute(notebook: Path, parameters: dict) -> Path:
    """Run one notebook with papermill into ``build/notebooks/``; return the executed copy.

    Raises:
        DriverError: a cell failed (the message names the cell and the error).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    output = paths.build_dir() / "notebooks" / notebook.name
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(str(notebook), str(output), parameters=parameters,
                                   kernel_name="python3", cwd=str(notebook.parent),
                                   progress_bar=False)
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


def update_manifest(notebook: Path, parameters: dict, profile: str, since: float) -> list[str]:
    """Record every figure of this notebook written since ``since`` in ``figures/MANIFEST.json``.

    A figure belongs to notebook ``NN_slug`` when its name starts with ``NN_``. ``parameters`` are
    the values the driver passed (profile and overrides); the others are the notebook's defaults at
    ``commit``. Entries of other notebooks are kept. Returns the recorded file names.
    """
    manifest_path = paths.figures_dir() / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    number = notebook.stem.split("_")[0]
    commit = git_commit()
    recorded = []
    for figure in sorted(paths.figures_dir().glob(f"{number}_*")):
        if figure.suffix in FIGURE_SUFFIXES and figure.stat().st_mtime >= since:
            manifest[figure.name] = {"notebook": f"notebooks/{notebook.name}", "profile": profile,
                                     "parameters": parameters, "commit": commit}
            recorded.append(figure.name)
    store.write_json(manifest_path, manifest)
    return recorded


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modlib.run",
                                     description="Run the notebooks headless with papermill.")
    parser.add_argument("notebooks", nargs="*", help="stems, NN numbers or paths (default: all)")
    parser.add_argument("--profile", default="default",
                        help="smoke (CI, seconds) | default (laptop CPU, minutes) | paper (GPU)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="override one parameter (repeatable)")
    parser.add_argument("--list", action="store_true", help="list notebooks and parameters")
    args = parser.parse_args(argv)
    try:
        notebooks = resolve(args.notebooks)
        if args.list:
            for notebook in notebooks:
                print(notebook.stem)
                for name, info in declared_parameters(notebook).items():
                    print(f"    {name}: {info['type']} = {info['default']}  # {info['help']}")
            return 0
        planned = plan(notebooks, args.profile, [tuple(p) for p in args.parameter])
        for notebook, parameters in planned:
            shown = ", ".join(f"{k}={v!r}" for k, v in parameters.items())
            print(f"[{args.profile}] {notebook.stem}: {shown}", flush=True)
            start = time.time()
            output = execute(notebook, parameters)
            figures = update_manifest(notebook, parameters, args.profile, start - 1)
            print(f"    done in {time.time() - start:.0f} s -> {output}"
                  f"{'' if not figures else '; figures: ' + ', '.join(figures)}", flush=True)
    except DriverError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
