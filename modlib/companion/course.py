"""Student copies and grading of the notebooks' exercises, with otter-grader.

Usage::

    python -m modlib.companion.course student                   # every notebook -> build/course/
    python -m modlib.companion.course student 05 06             # some notebooks
    python -m modlib.companion.course grade SUBMISSIONS         # grade every .ipynb below SUBMISSIONS
    python -m modlib.companion.course verify 05 --profile smoke # master: full marks, student copy: zero

The master notebooks in ``notebooks/`` are the only source; student copies are generated, never
edited by hand. An exercise in a master notebook is, in this order (``docs/course.md``):

1. a Markdown cell starting ``**Exercise N.**`` that says what to compute and into which variable;
2. a code cell tagged ``solution`` (it runs like any other cell in ``make figures``);
3. a code cell tagged ``tests``: plain ``assert`` checks a student can run;
4. optionally a code cell tagged ``hidden-tests``: more asserts used only for grading.

``make student`` (:func:`build`) checks that format, writes each notebook in otter-grader's
master format (``build/course/master/``), runs ``otter assign`` on it and collects

- ``build/course/student/NN_slug.ipynb``: solutions replaced by ``...``, the public tests as
  ``grader.check("exercise_N")`` cells (tests stored in the notebook's metadata, so each student
  copy is one self-contained file), no hidden tests, no outputs;
- ``build/course/autograder/NN_slug/``: otter's autograder notebook (with solutions) and
  ``autograder.zip`` (public and hidden tests), which :func:`grade` uses;
- ``build/course/exercises.json``: every exercise, its points and whether it has hidden tests.

Notebooks without exercises are copied unchanged to ``student/`` with a message; a notebook with
an ``Exercises`` section but no exercise in the format is left out, with a warning (its
solutions would reach the students).

:func:`grade` runs ``otter run`` (no Docker, no course database) on each submitted notebook,
matched to its autograder by the assignment name otter stores in the student copy's metadata
(else by file name), and writes ``grades.csv`` and ``grades.json``: one row per submission and
exercise with its score and the points possible.

Importing this module has no side effects; otter is imported only inside the functions that
use it. Used by ``make student`` and ``make grade``; the workflow, the format and the choice of
otter-grader are explained in ``docs/course.md``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import csv
import io
import json
import re
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import paths, store

TAG_SOLUTION = "solution"
TAG_TESTS = "tests"
TAG_HIDDEN = "hidden-tests"
EXERCISE_TAGS = (TAG_SOLUTION, TAG_TESTS, TAG_HIDDEN)
# "**Exercise 2.**", optionally followed by "(3 points)"
EXERCISE_HEADING = re.compile(r"^\s*\*\*Exercise\s+(\d+)\.\*\*"
                              r"(?:\s*\((\d+(?:\.\d+)?)\s+points?\))?")
OTTER_SPEC = "otter-grader>=7.0"


class CourseError(ValueError):
    """A master notebook's exercises do not follow the format; the message names the notebook, the
    exercise and what to fix."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of a master notebook: the indices of its cells in ``nb.cells``.

    ``name`` is the question name otter uses (``exercise_N``); ``points`` the exercise's total,
    1 unless the heading says ``**Exercise N.** (3 points)``, split evenly among its test cells.
    """

    notebook: str
    number: int
    prompt: int
    solution: int
    tests: int
    hidden_tests: int | None
    points: float

    @property
    def name(self) -> str:
        return f"exercise_{self.number}"


def course_dir() -> Path:
    """``build/course/``: everything ``make student`` writes."""
    return paths.build_dir() / "course"


# --------------------------------------------------------------------------------------------
# The exercise format


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _exercise_tags(cell) -> list[str]:
    return [tag for tag in _tags(cell) if tag in EXERCISE_TAGS]


def _ends_exercise(cell) -> bool:
    """A Markdown cell that starts another exercise or a new section closes an exercise."""
    if cell.get("cell_type") != "markdown":
        return False
    text = _source(cell).lstrip()
    return bool(EXERCISE_HEADING.match(text)) or text.startswith("#")


def _parse_cell(source: str):
    """The AST of a code cell, IPython magics and shell lines dropped; ``None`` if it does not
    parse."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def _bound_names(tree) -> set[str]:
    """Names a cell binds in the notebook's global namespace: assignment, loop and ``with``
    targets, imports, ``def`` and ``class`` names (not the local names inside functions,
    lambdas and comprehensions)."""
    names: set[str] = set()

    def visit(node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            return
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
                             ast.GeneratorExp)):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    if tree is not None:
        visit(tree)
    return names


def _used_names(tree) -> set[str]:
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Load)}


def _check_tests_need_the_solution(where: str, cells, solution: int, checks: list) -> None:
    """Each checks cell must use a name that the solution cell binds and no earlier cell does:
    otherwise, with the solution replaced by ``...``, the names it checks still hold the values
    of earlier cells and the checks pass without any work (a check that cannot fail)."""
    earlier = set()
    for cell in cells[:solution]:
        if cell.get("cell_type") == "code":
            earlier |= _bound_names(_parse_cell(_source(cell)))
    new = _bound_names(_parse_cell(_source(cells[solution]))) - earlier
    for kind, index in checks:
        used = _used_names(ast.parse(_source(cells[index])))
        if not used & new:
            stale = sorted(used & earlier)
            raise CourseError(
                f"{where}: its {kind!r} cell {index} uses none of the names that the solution "
                f"introduces ({', '.join(sorted(new)) or 'it introduces none'}), so it would "
                "pass without the solution"
                + (f" (defined before the solution: {', '.join(stale)})" if stale else "")
                + "; check the new variables the exercise asks for")


def _is_assert_call(node) -> bool:
    """``assert_x(...)`` or ``np.testing.assert_x(...)``: a call of an assert function."""
    if not isinstance(node, ast.Call):
        return False
    name = getattr(node.func, "attr", None) or getattr(node.func, "id", None) or ""
    return name.startswith("assert")


def _check_test_source(where: str, kind: str, source: str) -> None:
    """A tests cell must parse, hold at least one ``assert`` (a test that cannot fail is a
    defect) and print nothing: otter compares a test's output with the master copy's, which is
    stored without outputs, so a bare expression or a ``print`` would fail every submission."""
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise CourseError(f"{where}: the {kind!r} cell has a syntax error on line {err.lineno}: "
                          f"{err.msg}") from None
    if not any(isinstance(node, ast.Assert) or _is_assert_call(node) for node in ast.walk(tree)):
        raise CourseError(f"{where}: the {kind!r} cell has no assert; its checks must be plain "
                          "asserts (or assert functions such as np.testing.assert_allclose) "
                          "that fail without the solution")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
            raise CourseError(f"{where}: the {kind!r} cell calls print() on line {node.lineno}; "
                              "a tests cell must print nothing (use assert messages instead)")
    for node in tree.body:
        if isinstance(node, ast.Expr) and not _is_assert_call(node.value):
            raise CourseError(
                f"{where}: the {kind!r} cell has a bare expression on line {node.lineno} "
                f"({ast.unparse(node)[:60]!r}); a tests cell may only hold asserts and "
                "statements that show nothing (calls of assert functions such as "
                "np.testing.assert_allclose are fine)")


def find_exercises(nb, notebook: str) -> list[Exercise]:
    """The exercises of a master notebook, checked against the format (module docstring).

    Args:
        nb: the notebook (``nbformat.NotebookNode`` or the same as plain dicts).
        notebook: its name, for the messages (e.g. ``05_modularity_curves``).

    Returns:
        The exercises in notebook order; ``[]`` for a notebook without exercises.

    Raises:
        CourseError: a cell tagged ``solution``/``tests``/``hidden-tests`` outside an exercise;
            an exercise without a ``solution`` cell (e.g. the solution cell is untagged) or without
            a ``tests`` cell, with cells in the wrong order or twice; a repeated exercise number;
            a cell between the solution and its tests; a tests cell that does not parse, has no
            assert, would print, or uses no name that the solution introduces (it would pass
            without the solution).
    """
    cells = nb["cells"]
    starts = [i for i, cell in enumerate(cells) if cell.get("cell_type") == "markdown"
              and EXERCISE_HEADING.match(_source(cell).lstrip())]
    inside = set()
    exercises, numbers = [], {}
    for start in starts:
        match = EXERCISE_HEADING.match(_source(cells[start]).lstrip())
        number = int(match.group(1))
        points = float(match.group(2)) if match.group(2) else 1.0
        where = f"{notebook}, Exercise {number} (cell {start})"
        if number in numbers:
            raise CourseError(f"{where}: exercise number {number} is used twice (also cell "
                              f"{numbers[number]}); number the exercises 1, 2, ...")
        numbers[number] = start
        end = start + 1
        while end < len(cells) and not _ends_exercise(cells[end]):
            end += 1
        found: dict[str, list[int]] = {tag: [] for tag in EXERCISE_TAGS}
        untagged = []
        for i in range(start + 1, end):
            inside.add(i)
            tags = _exercise_tags(cells[i])
            if len(tags) > 1:
                raise CourseError(f"{where}: cell {i} has several exercise tags {tags}; give it "
                                  "one of 'solution', 'tests', 'hidden-tests'")
            if tags and cells[i].get("cell_type") != "code":
                raise CourseError(f"{where}: cell {i} is tagged {tags[0]!r} but is not a code "
                                  "cell")
            if tags:
                found[tags[0]].append(i)
            elif cells[i].get("cell_type") == "code":
                untagged.append(i)
        for tag in EXERCISE_TAGS:
            if len(found[tag]) > 1:
                raise CourseError(f"{where}: {len(found[tag])} cells tagged {tag!r} (cells "
                                  f"{found[tag]}); an exercise has exactly one")
        if not found[TAG_SOLUTION]:
            hint = (f"; the untagged code cell(s) {untagged} may be the solution: tag it "
                    f"'{TAG_SOLUTION}'" if untagged else "")
            raise CourseError(f"{where}: no code cell tagged {TAG_SOLUTION!r} before the next "
                              f"exercise or section{hint}")
        if not found[TAG_TESTS]:
            hint = (f"; the untagged code cell(s) {untagged} may be the tests: tag it "
                    f"'{TAG_TESTS}'" if untagged else "")
            raise CourseError(f"{where}: no code cell tagged {TAG_TESTS!r} (public asserts a "
                              f"student can run) before the next exercise or section{hint}")
        solution, tests = found[TAG_SOLUTION][0], found[TAG_TESTS][0]
        hidden = found[TAG_HIDDEN][0] if found[TAG_HIDDEN] else None
        if not solution < tests:
            raise CourseError(f"{where}: the 'tests' cell {tests} comes before the 'solution' "
                              f"cell {solution}; the order is solution, tests, hidden-tests")
        if hidden is not None and not tests < hidden:
            raise CourseError(f"{where}: the 'hidden-tests' cell {hidden} comes before the "
                              f"'tests' cell {tests}; the order is solution, tests, hidden-tests")
        last = hidden if hidden is not None else tests
        between = [i for i in range(solution + 1, last) if i != tests]
        if between:
            raise CourseError(f"{where}: cell(s) {between} lie between its 'solution' cell and "
                              "its tests; move them before the solution or after the tests")
        if not _source(cells[solution]).strip():
            raise CourseError(f"{where}: the 'solution' cell {solution} is empty")
        _check_test_source(where, TAG_TESTS, _source(cells[tests]))
        if hidden is not None:
            _check_test_source(where, TAG_HIDDEN, _source(cells[hidden]))
        _check_tests_need_the_solution(
            where, cells, solution,
            [(TAG_TESTS, tests)] + ([(TAG_HIDDEN, hidden)] if hidden is not None else []))
        exercises.append(Exercise(notebook, number, start, solution, tests, hidden, points))
    for i, cell in enumerate(cells):
        tags = _exercise_tags(cell)
        if tags and i not in inside:
            before = [j for j in range(i) if cells[j].get("cell_type") == "markdown"]
            seen = (f" (the Markdown cell {before[-1]} before it starts "
                    f"{_source(cells[before[-1]]).lstrip()[:40]!r})" if before else "")
            raise CourseError(f"{notebook}: cell {i} is tagged {tags[0]!r} but belongs to no "
                              "exercise; put it after a Markdown cell starting "
                              f"'**Exercise N.**'{seen}")
    return exercises


# --------------------------------------------------------------------------------------------
# Our format -> otter's master format


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
    config = {"name": notebook, "init_cell": False, "check_all_cell": False,
              "export_cell": False, "run_tests": False, "solutions_pdf": False,
              "template_pdf": False, "tests": {"files": False, "ok_format": True},
              "generate": {"pdf": False, "filtering": False}}
    import yaml

    out = [_raw("# ASSIGNMENT CONFIG\n" + yaml.safe_dump(config, sort_keys=False))]
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


# --------------------------------------------------------------------------------------------
# Grading


def _assignment_name(submission: Path) -> str:
    """The notebook a submission answers: otter's assignment name in its metadata, else the
    file name's stem."""
    try:
        meta = json.loads(submission.read_text())["metadata"]
        return meta.get("otter", {}).get("assignment_name") or submission.stem
    except (ValueError, KeyError, TypeError, AttributeError):   # graded (and refused) later
        return submission.stem


def _grading_kernel() -> dict | None:
    """The kernelspec of the driver's kernel ``modlib`` when it is installed (``make setup``), so
    that submissions run in the same kernel as ``make figures``; else ``None`` (the notebook's own
    kernel, usually ``python3`` of this environment)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    from .run import KERNEL

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        return None
    return {"name": KERNEL, "display_name": spec.display_name, "language": spec.language}


def with_profile(nb: dict, notebook: str, profile: str) -> dict:
    """A copy of notebook ``nb`` (plain dicts) whose parameters are those of ``profile`` for
    ``notebook`` (``notebooks/profiles.toml``, as ``python -m modlib.companion.run --profile`` sets them),
    injected by papermill after the cell tagged ``parameters``.

    Raises:
        CourseError: unknown profile, or the notebook has no cell tagged ``parameters``.
    """
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    from .run import PROFILES, DriverError, profile_parameters

    if profile not in PROFILES:
        raise CourseError(f"profile={profile!r} is not allowed: choose one of {PROFILES}")
    if not any("parameters" in _tags(cell) for cell in nb.get("cells", [])):
        raise CourseError(f"{notebook}: the submission has no cell tagged 'parameters', so the "
                          f"{profile!r} profile cannot be applied")
    node = nbformat.from_dict(copy.deepcopy(nb))
    node.metadata.setdefault("kernelspec", {"name": "python3", "language": "python",
                                            "display_name": "Python 3"})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{notebook}.ipynb"
        nbformat.write(node, path)
        try:
            values = profile_parameters(profile, path, declared_or_empty(path))
        except DriverError as err:
            raise CourseError(str(err)) from None
        node = load_notebook_node(str(path))   # with the metadata papermill expects
    return json.loads(nbformat.writes(parameterize_notebook(node, values)))


def declared_or_empty(path: Path) -> dict:
    """The parameters a notebook declares (``{}`` without a parameters cell)."""
    from .run import DriverError, declared_parameters

    try:
        return declared_parameters(path)
    except DriverError:
        return {}


def first_error(nb) -> str:
    """``"cell 3 (first line): ValueError: ..."`` for the first cell of an executed notebook that
    raised, with the number of other cells that raised; ``""`` when none did."""
    failed = []
    for i, cell in enumerate(nb.get("cells", [])):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                failed.append((i, cell, output))
                break
    if not failed:
        return ""
    i, cell, output = failed[0]
    line = _source(cell).strip().splitlines()[0][:50] if _source(cell).strip() else ""
    more = f" (and {len(failed) - 1} later cells)" if len(failed) > 1 else ""
    return f"cell {i} ({line!r}) raised {output['ename']}: {output['evalue'][:200]}{more}"


def _run_outputs(folder: Path):
    """Point the grading kernel's figures and metrics at ``folder`` (the kernel inherits this
    process's environment), as the papermill driver does for non-default runs."""
    return paths.environment({"MODLIB_FIGURES_DIR": str(folder / "figures"),
                              "MODLIB_METRICS_DIR": str(folder / "metrics")})


def grade_one(submission: Path, autograder_zip: Path, notebook: str,
              profile: str = "default", run_dir: Path | None = None
              ) -> tuple[dict[str, tuple], str]:
    """Grade one notebook with ``otter run``.

    The notebook runs top to bottom in a fresh kernel (``modlib`` when installed; a failing cell
    does not stop the run), then every public and hidden test runs; a failed test scores 0. A
    notebook without otter's assignment name in its metadata (a master notebook, or a renamed
    copy) is graded as ``notebook``. With ``profile`` other than ``default`` the notebook runs
    with that profile's parameters (:func:`with_profile`), e.g. ``smoke`` to grade in seconds.

    The run's figures and metrics go to ``run_dir/figures`` and ``run_dir/metrics`` (a
    temporary folder when ``run_dir`` is None), never to the committed ``figures/`` and
    ``results/``; the executed notebook is written to ``run_dir/<notebook>.ipynb``.

    Returns:
        ``({exercise_name: (score, possible, failures)}, error)``: ``failures`` says which of the
        exercise's checks failed and how (``""`` when all passed); ``error`` is
        :func:`first_error` of the executed notebook (``""`` when every cell ran).

    Raises:
        CourseError: otter could not grade the file (the message names it).
    """
    from otter.run import main as otter_run

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        try:
            nb = json.loads(Path(submission).read_text())
            nb["cells"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
            raise CourseError(f"{submission} is not a notebook ({type(err).__name__}: "
                              f"{err})") from None
        if profile != "default":
            nb = with_profile(nb, notebook, profile)
        nb.setdefault("metadata", {}).setdefault("otter", {})["assignment_name"] = notebook
        kernel = _grading_kernel()
        if kernel:
            nb["metadata"]["kernelspec"] = kernel
        copy_path = tmp / f"{notebook}.ipynb"
        copy_path.write_text(json.dumps(nb))
        outputs = Path(run_dir) if run_dir is not None else tmp / "run"
        with _quiet() as log, warnings.catch_warnings(), _run_outputs(outputs):
            warnings.simplefilter("ignore")   # otter's own deprecation warnings (pandas)
            try:
                results = otter_run(str(copy_path), autograder=str(autograder_zip),
                                    output_dir=str(tmp), no_logo=True)
            except Exception as err:
                raise CourseError(f"{submission}: otter could not grade it: "
                                  f"{type(err).__name__}: {err}\n{log.getvalue()[-2000:]}") \
                    from None
        if run_dir is not None and results.notebook is not None:
            import nbformat

            executed = outputs / f"{notebook}.ipynb"
            store.atomic_write(executed, lambda path: nbformat.write(results.notebook, path))
    if results.has_catastrophic_failure():
        raise CourseError(f"{submission}: otter could not grade it: "
                          f"{results.catastrophic_error}")
    scores = {name: (float(result.score), float(result.possible), _failures(result))
              for name, result in results.results.items()}
    return scores, first_error(results.notebook or {})


def _failures(result) -> str:
    """The last line of each failed test case's message (``"public: NameError: name 'q' is not
    defined"``), joined with `` | ``."""
    reasons = []
    for case in result.test_case_results:
        if not case.passed:
            lines = [line.strip() for line in (case.message or "").splitlines() if line.strip()]
            kind = "hidden" if case.test_case.hidden else "public"
            reasons.append(f"{kind}: {lines[-1][:200] if lines else 'failed'}")
    return " | ".join(reasons)


def grade(submissions: Path, out: Path | None = None, course: Path | None = None,
          profile: str = "default", echo=print) -> list[dict]:
    """Grade every ``.ipynb`` below ``submissions`` and write ``grades.csv`` and ``grades.json``.

    A submission is ``submissions/<student>/NN_slug.ipynb`` or ``submissions/NN_slug.ipynb``
    (student = the file's folder relative to ``submissions``, else the file name); it is matched
    to ``course/autograder/<name>/autograder.zip`` by :func:`_assignment_name`. Exercises are
    listed from ``course/exercises.json``, so an exercise a submission broke still gets a row
    with score 0.

    Args:
        submissions: a folder (or a single notebook).
        out: where the grades go (default ``build/course/grades/``); each run's executed
            notebook, figures and metrics go to ``out/runs/<student>/<notebook>/``.
        course: the output of ``make student`` (default ``build/course/``).
        profile: the parameters the notebooks run with (:func:`grade_one`).

    Returns:
        Rows ``{"student", "notebook", "exercise", "score", "possible", "graded", "note",
        "file"}``; ``graded`` is False (score 0, the reason in ``note``) where otter could not
        grade the file or returned no result for the exercise; for an exercise short of full
        marks, ``note`` says which checks failed and how, and the notebook's first error if a
        cell raised.

    Raises:
        CourseError: ``submissions`` holds no notebook, a notebook has no autograder (run
            ``make student`` first), or otter is not installed.
    """
    _require_otter()
    submissions = Path(submissions)
    course = Path(course) if course is not None else course_dir()
    out = Path(out) if out is not None else course / "grades"
    if submissions.is_file():
        files, base = [submissions], submissions.parent
    elif submissions.is_dir():
        files = sorted(p for p in submissions.rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts)
        base = submissions
    else:
        raise CourseError(f"SUBMISSIONS={submissions} is neither a notebook nor a folder")
    if not files:
        raise CourseError(f"no .ipynb file below {submissions}")
    listed = course / "exercises.json"
    if not listed.is_file():
        raise CourseError(f"{listed} is missing: run `make student` first")
    by_notebook: dict[str, list[dict]] = {}
    for exercise in json.loads(listed.read_text()):
        by_notebook.setdefault(exercise["notebook"], []).append(exercise)
    plan = []
    for file in files:
        name = _assignment_name(file)
        zip_path = course / "autograder" / name / "autograder.zip"
        if name not in by_notebook or not zip_path.is_file():
            known = ", ".join(sorted(by_notebook)) or "none"
            raise CourseError(f"{file}: no autograder for notebook {name!r} in {course} "
                              f"(notebooks with exercises: {known}); run `make student`")
        relative = file.parent.relative_to(base)
        student = str(relative) if str(relative) != "." else file.stem
        plan.append((file, name, zip_path, student))
    rows = []
    for i, (file, name, zip_path, student) in enumerate(plan, start=1):
        start = time.time()
        try:
            scores, error = grade_one(file, zip_path, name, profile,
                                      out / "runs" / student / name)
            note = ""
        except CourseError as err:   # one broken submission must not stop the class's grading
            scores, error, note = {}, "", str(err).splitlines()[0]
            echo(f"WARNING {note}: every exercise scored 0")
        got = possible = 0.0
        for exercise in by_notebook[name]:
            graded = exercise["name"] in scores
            score, out_of, failures = scores.get(exercise["name"],
                                                 (0.0, exercise["points"], ""))
            if not graded and not note:
                note = (f"otter returned no result for {exercise['name']} (is the autograder "
                        "older than exercises.json? rerun `make student`)")
                echo(f"WARNING {file}: {note}: scored 0")
            rows.append({"student": student, "notebook": name, "exercise": exercise["name"],
                         "score": score, "possible": out_of, "graded": graded,
                         "note": (note if not graded else "; ".join(
                             part for part in (failures, error if score < out_of else "")
                             if part)),
                         "file": str(file)})
            got, possible = got + score, possible + out_of
        echo(f"{i}/{len(plan)} {student} {name}: {got:g}/{possible:g} "
             f"({time.time() - start:.0f} s){'; ' + error if error else ''}")
    out.mkdir(parents=True, exist_ok=True)
    store.write_json(out / "grades.json", rows)

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    store.atomic_write(out / "grades.csv", write_csv)
    echo(f"grades: {out / 'grades.csv'}")
    return rows


def problems(rows: list[dict]) -> list[str]:
    """What :func:`verify` reports from the rows of grading the master copies (student
    ``master``) and the untouched student copies (student ``student``): every master exercise
    short of full marks and every untouched exercise above zero, with the reason."""
    found = []
    for row in rows:
        where = f"{row['notebook']} {row['exercise']}"
        if row["student"] == "master" and row["score"] < row["possible"]:
            found.append(f"{where}: the master copy scores {row['score']:g}/{row['possible']:g}"
                         f" ({row['note'] or 'no reason given'})")
        elif row["student"] == "student" and row["score"] > 0:
            found.append(f"{where}: the untouched student copy scores {row['score']:g}/"
                         f"{row['possible']:g}: its checks pass without the solution")
    return found


def verify(notebooks: list[Path] | None = None, profile: str = "smoke", echo=print) -> list[str]:
    """Run the exercises for real: build the student copies of ``notebooks`` (default: all), then
    grade each master notebook, which must score full marks, and its untouched student copy,
    which must score zero on every exercise. Runs every notebook twice (``profile`` smoke:
    seconds to a minute each). Grades go to ``build/course/verify/``.

    Returns:
        The problems found (``[]`` when every exercise behaves); see :func:`problems`.
    """
    from .run import all_notebooks

    out = course_dir()
    exercises = build(notebooks, out, echo=echo)
    masters = {Path(p).stem: Path(p) for p in (notebooks or all_notebooks())}
    stems = sorted({e.notebook for e in exercises})
    if not stems:
        echo("no exercises to verify")
        return []
    with tempfile.TemporaryDirectory() as tmp:
        for who, source in (("master", masters), ("student", None)):
            (Path(tmp) / who).mkdir()
            for stem in stems:
                origin = source[stem] if source else out / "student" / f"{stem}.ipynb"
                shutil.copyfile(origin, Path(tmp) / who / f"{stem}.ipynb")
        rows = grade(Path(tmp), out=out / "verify", course=out, profile=profile, echo=echo)
    found = problems(rows)
    for problem in found:
        echo(f"PROBLEM {problem}")
    echo(f"{len(exercises)} exercises in {len(stems)} notebooks: "
         + ("all score full marks with their solution and zero without" if not found
            else f"{len(found)} problems"))
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modlib.companion.course",
                                     description="Student copies and grading (otter-grader).")
    commands = parser.add_subparsers(dest="command", required=True)
    student = commands.add_parser("student", help="write build/course/ from the notebooks")
    student.add_argument("notebooks", nargs="*", help="stems, NN numbers or paths (default: all)")
    student.add_argument("--out", type=Path, help="default: build/course/")
    grader = commands.add_parser("grade", help="grade submitted notebooks")
    grader.add_argument("submissions", type=Path, help="a folder of .ipynb files (or one file)")
    grader.add_argument("--course", type=Path, help="output of `student` (default build/course/)")
    grader.add_argument("--out", type=Path, help="default: build/course/grades/")
    grader.add_argument("--profile", default="default",
                        help="run the submissions with this profile's parameters (smoke: fast)")
    checker = commands.add_parser("verify", help="grade the master copies (full marks "
                                  "expected) and untouched student copies (zero expected)")
    checker.add_argument("notebooks", nargs="*", help="stems, NN numbers or paths (default: all)")
    checker.add_argument("--profile", default="smoke", help="parameters of the runs (default "
                         "smoke)")
    args = parser.parse_args(argv)
    from .run import DriverError, resolve

    try:
        notebooks = None
        if args.command in ("student", "verify"):
            files = [Path(n) for n in args.notebooks if Path(n).suffix == ".ipynb"
                     and Path(n).is_file()]
            names = [n for n in args.notebooks if Path(n) not in files]
            notebooks = (files + resolve(names) if names else files) or None
        start = time.time()
        if args.command == "student":
            build(notebooks, args.out)
            print(f"done in {time.time() - start:.0f} s")
        elif args.command == "verify":
            found = verify(notebooks, args.profile)
            print(f"done in {time.time() - start:.0f} s")
            return 1 if found else 0
        else:
            grade(args.submissions, args.out, args.course, args.profile)
    except (CourseError, DriverError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
