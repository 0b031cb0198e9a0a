"""Student copies and autograders of the master notebooks, with ``otter assign`` (``make student``).

:func:`to_otter` converts a master notebook (format: :mod:`modlib.companion.course_format`) to
otter-grader's master format; :func:`assign` runs ``otter assign`` on it; :func:`build` does so
for every notebook and writes ``build/course/``:

- ``student/NN_slug.ipynb``: solutions replaced by ``...``, the public tests as
  ``grader.check("exercise_N")`` cells (tests stored in the notebook's metadata, so each student
  copy is one self-contained file), no hidden tests, no outputs;
- ``autograder/NN_slug/``: otter's autograder notebook (with solutions) and ``autograder.zip``
  (public and hidden tests), which the grader (:mod:`modlib.companion.course_grading`) uses;
- ``exercises.json``: every exercise, its points and whether it has hidden tests.

Part of :mod:`modlib.companion.course`; otter is imported only inside the functions that use it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from .. import paths, store
from .course_format import (EXERCISE_TAGS, CourseError, Exercise, _source, _tags,
                            find_exercises)

OTTER_SPEC = "otter-grader>=7.0"


def course_dir() -> Path:
    """``build/course/``: everything ``make student`` writes."""
    return paths.build_dir() / "course"


def _raw(text: str):
    import nbformat

    return nbformat.v4.new_raw_cell(text)


def _untagged(cell, drop=EXERCISE_TAGS):
    cell = copy.deepcopy(cell)
    tags = [tag for tag in _tags(cell) if tag not in drop]
    if tags:
        cell["metadata"]["tags"] = tags
    else:
        cell.get("metadata", {}).pop("tags", None)
    return cell


def _test_cell(cell, hidden: bool, points: float):
    cell = _untagged(cell)
    config = f'""" # BEGIN TEST CONFIG\nhidden: {str(hidden).lower()}\npoints: {points:g}\n""" ' \
             '# END TEST CONFIG\n'
    cell["source"] = config + _source(cell)
    cell["outputs"] = []
    return cell


def _assignment_config(notebook: str):
    """otter's ``ASSIGNMENT CONFIG`` raw cell: tests in OK format, no PDFs, no extra cells."""
    import yaml

    config = {"name": notebook, "init_cell": False, "check_all_cell": False,
              "export_cell": False, "run_tests": False, "solutions_pdf": False,
              "template_pdf": False, "tests": {"files": False, "ok_format": True},
              "generate": {"pdf": False, "filtering": False}}
    return _raw("# ASSIGNMENT CONFIG\n" + yaml.safe_dump(config, sort_keys=False))


def to_otter(nb, notebook: str):
    """A copy of master notebook ``nb`` in otter-assign's format (questions ``exercise_N``).

    The solution cell's whole body sits between ``# BEGIN SOLUTION`` and ``# END SOLUTION``, so
    the student copy shows ``...`` in its place; each test cell becomes one otter test case, with
    ``hidden`` and its share of the exercise's points in a test config. The otter init cell
    (``grader = otter.Notebook(...)``) is inserted just before the first exercise, so the
    notebook's first cells (title, parameters, imports) stay where they are.

    Raises:
        CourseError: as :func:`find_exercises`; also for a notebook without exercises.
    """
    import nbformat

    exercises = find_exercises(nb, notebook)
    if not exercises:
        raise CourseError(f"{notebook}: no exercises ('**Exercise N.**' Markdown cells)")
    cells = nb["cells"]
    out = [_assignment_config(notebook)]
    by_start = {exercise.prompt: exercise for exercise in exercises}
    open_exercise = None
    for i, cell in enumerate(cells):
        if i == exercises[0].prompt:
            out.append(nbformat.v4.new_code_cell(
                f'# the checks of the exercises (otter-grader)\nimport otter\n'
                f'grader = otter.Notebook("{notebook}.ipynb")'))
        if i in by_start:
            open_exercise = by_start[i]
            tests_count = 1 + (open_exercise.hidden_tests is not None)
            out.append(_raw(f"# BEGIN QUESTION\nname: {open_exercise.name}\npoints: "
                            f"{open_exercise.points:g}"))
            out.append(_untagged(cell))
            continue
        ex = open_exercise
        if ex is not None and i == ex.solution:
            solution = _untagged(cell)
            solution["source"] = "# BEGIN SOLUTION\n" + _source(cell).rstrip("\n") + \
                                 "\n# END SOLUTION"
            solution["outputs"] = []
            out += [_raw("# BEGIN SOLUTION"), solution, _raw("# END SOLUTION")]
        elif ex is not None and i == ex.tests:
            share = ex.points / tests_count
            out += [_raw("# BEGIN TESTS"), _test_cell(cell, hidden=False, points=share)]
            if ex.hidden_tests is None:
                out += [_raw("# END TESTS"), _raw("# END QUESTION")]
                open_exercise = None
        elif ex is not None and i == ex.hidden_tests:
            out += [_test_cell(cell, hidden=True, points=ex.points / tests_count),
                    _raw("# END TESTS"), _raw("# END QUESTION")]
            open_exercise = None
        else:
            out.append(_untagged(cell, drop=()))
    converted = copy.deepcopy(nb)
    converted["cells"] = out
    return converted


# --------------------------------------------------------------------------------------------
# make student


@contextlib.contextmanager
def _quiet():
    """otter prints a summary table and logs; keep them unless something fails."""
    import logging

    buffer = io.StringIO()
    levels = {}
    for name in ("otter", "traitlets", "nbclient", "nbconvert"):
        levels[name] = logging.getLogger(name).level
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield buffer
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _require_otter():
    try:
        import otter  # noqa: F401
    except ImportError:
        raise CourseError(f"otter-grader is not installed: pip install '{OTTER_SPEC}' (or "
                          "pip install -e '.[course]')") from None


def assign(notebook: Path, out: Path) -> list[Exercise]:
    """Student copy and autograder of one master notebook (``otter assign``).

    Writes ``out/master/NN_slug.ipynb`` (otter's format), ``out/student/NN_slug.ipynb`` and
    ``out/autograder/NN_slug/`` (``NN_slug.ipynb`` with solutions, ``autograder.zip``). A
    notebook without exercises is copied unchanged to ``out/student/``, unless it has an
    ``Exercises`` section (exercises in another format): then it is left out.

    Returns:
        The notebook's exercises (``[]`` when it has none).

    Raises:
        CourseError: the exercises do not follow the format (the message names the notebook and
            the exercise), or otter failed.
    """
    import nbformat

    _require_otter()
    notebook = Path(notebook)
    nb = nbformat.read(notebook, as_version=4)
    exercises = find_exercises(nb, notebook.stem)
    (out / "student").mkdir(parents=True, exist_ok=True)
    if not exercises:
        shutil.rmtree(out / "autograder" / notebook.stem, ignore_errors=True)
        (out / "master" / notebook.name).unlink(missing_ok=True)
        (out / "student" / notebook.name).unlink(missing_ok=True)
        if not _has_exercise_section(nb):
            shutil.copyfile(notebook, out / "student" / notebook.name)
        return []
    master = out / "master" / notebook.name
    master.parent.mkdir(parents=True, exist_ok=True)
    store.atomic_write(master, lambda tmp: nbformat.write(to_otter(nb, notebook.stem), tmp))
    from otter.assign import main as otter_assign

    with tempfile.TemporaryDirectory(dir=out) as tmp:
        result = Path(tmp) / "result"
        with _quiet() as log:
            try:
                otter_assign(str(master), str(result), no_pdfs=True, no_run_tests=True)
            except Exception as err:
                raise CourseError(f"{notebook.stem}: otter assign failed: "
                                  f"{type(err).__name__}: {err}\n{log.getvalue()}") from None
        shutil.copyfile(result / "student" / notebook.name, out / "student" / notebook.name)
        target = out / "autograder" / notebook.stem
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        shutil.copyfile(result / "autograder" / notebook.name, target / notebook.name)
        zips = sorted((result / "autograder").glob("*.zip"))
        if len(zips) != 1:
            raise CourseError(f"{notebook.stem}: otter assign wrote {len(zips)} autograder zip "
                              "files, expected 1")
        shutil.copyfile(zips[0], target / "autograder.zip")
    return exercises


def _has_exercise_section(nb) -> bool:
    """An ``## Exercises`` heading: exercises in another format, whose solutions would reach
    the students if the notebook were copied."""
    return any(cell.cell_type == "markdown" and
               re.match(r"#+\s*Exercises?\b", cell.source.lstrip(), flags=re.IGNORECASE)
               for cell in nb.cells)


def build(notebooks: list[Path] | None = None, out: Path | None = None,
          echo=print) -> list[Exercise]:
    """``make student``: :func:`assign` every master notebook (default: all of ``notebooks/``)
    into ``out`` (default ``build/course/``) and write ``exercises.json``.

    Every notebook is checked before any is converted, so a format error stops the build before
    it writes anything. Building all notebooks starts from empty folders; building some
    replaces only theirs (their copies, autograders and ``exercises.json`` entries). Returns the
    exercises of ``notebooks``.

    Raises:
        CourseError: a notebook's exercises do not follow the format, or otter failed.
    """
    import nbformat

    from .run import all_notebooks

    everything_asked = notebooks is None
    notebooks = [Path(p) for p in (notebooks if notebooks is not None else all_notebooks())]
    out = Path(out) if out is not None else course_dir()
    for notebook in notebooks:
        find_exercises(nbformat.read(notebook, as_version=4), notebook.stem)
    listed = out / "exercises.json"
    kept = []
    if everything_asked:
        for folder in ("student", "autograder", "master"):
            shutil.rmtree(out / folder, ignore_errors=True)
    elif listed.is_file():   # a subset: the other notebooks' copies and entries stay
        stems = {notebook.stem for notebook in notebooks}
        kept = [e for e in json.loads(listed.read_text()) if e["notebook"] not in stems]
    everything = []
    for notebook in notebooks:
        start = time.time()
        exercises = assign(notebook, out)
        everything += exercises
        if exercises:
            hidden = sum(e.hidden_tests is not None for e in exercises)
            echo(f"{notebook.stem}: {len(exercises)} exercises ({hidden} with hidden tests) in "
                 f"{time.time() - start:.1f} s")
        elif _has_exercise_section(nbformat.read(notebook, as_version=4)):
            echo(f"WARNING {notebook.stem}: an 'Exercises' section but no '**Exercise N.**' "
                 "cells: left out of the student copies (its solutions would reach the "
                 "students); write its exercises in the format of docs/course.md")
        else:
            echo(f"{notebook.stem}: no exercises, copied unchanged to the student folder")
    entries = kept + [asdict(e) | {"name": e.name} for e in everything]
    store.write_json(listed, sorted(entries, key=lambda e: (e["notebook"], e["number"])))
    echo(f"student copies: {out / 'student'}  autograders: {out / 'autograder'}")
    return everything
