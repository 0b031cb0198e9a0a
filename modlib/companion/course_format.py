"""The exercise format of the master notebooks: reading and checking it (``make student``).

An exercise in a master notebook is, in this order (``docs/course.md``):

1. a Markdown cell starting ``**Exercise N.**`` that says what to compute and into which variable;
2. a code cell tagged ``solution`` (it runs like any other cell in ``make figures``);
3. a code cell tagged ``tests``: plain ``assert`` checks a student can run;
4. optionally a code cell tagged ``hidden-tests``: more asserts used only for grading.

:func:`find_exercises` reads a notebook's exercises and refuses, naming the notebook and the
exercise, whatever breaks the format. Part of :mod:`modlib.companion.course`; nothing here runs
a notebook or imports otter.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

TAG_SOLUTION = "solution"
TAG_TESTS = "tests"
TAG_HIDDEN = "hidden-tests"
EXERCISE_TAGS = (TAG_SOLUTION, TAG_TESTS, TAG_HIDDEN)
# "**Exercise 2.**", optionally followed by "(3 points)"
EXERCISE_HEADING = re.compile(r"^\s*\*\*Exercise\s+(\d+)\.\*\*"
                              r"(?:\s*\((\d+(?:\.\d+)?)\s+points?\))?")


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
    inside: set[int] = set()
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
        inside.update(range(start + 1, end))
        solution, tests, hidden = _exercise_cells(where, cells, start, end)
        _check_exercise(where, cells, solution, tests, hidden)
        exercises.append(Exercise(notebook, number, start, solution, tests, hidden, points))
    _check_no_stray_tags(notebook, cells, inside)
    return exercises


def _exercise_cells(where: str, cells, start: int, end: int) -> tuple[int, int, int | None]:
    """The (solution, tests, hidden-tests or None) cells between an exercise's heading ``start``
    and ``end``, each tagged once and in that order (else :class:`CourseError`)."""
    found: dict[str, list[int]] = {tag: [] for tag in EXERCISE_TAGS}
    untagged = []
    for i in range(start + 1, end):
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
    for tag, what in ((TAG_SOLUTION, ""), (TAG_TESTS, " (public asserts a student can run)")):
        if not found[tag]:
            hint = (f"; the untagged code cell(s) {untagged} may be the "
                    f"{'solution' if tag == TAG_SOLUTION else 'tests'}: tag it '{tag}'"
                    if untagged else "")
            raise CourseError(f"{where}: no code cell tagged {tag!r}{what} before the next "
                              f"exercise or section{hint}")
    solution, tests = found[TAG_SOLUTION][0], found[TAG_TESTS][0]
    hidden = found[TAG_HIDDEN][0] if found[TAG_HIDDEN] else None
    if not solution < tests:
        raise CourseError(f"{where}: the 'tests' cell {tests} comes before the 'solution' "
                          f"cell {solution}; the order is solution, tests, hidden-tests")
    if hidden is not None and not tests < hidden:
        raise CourseError(f"{where}: the 'hidden-tests' cell {hidden} comes before the "
                          f"'tests' cell {tests}; the order is solution, tests, hidden-tests")
    return solution, tests, hidden


def _check_exercise(where: str, cells, solution: int, tests: int, hidden: int | None) -> None:
    """Nothing between the solution and its tests, a non-empty solution, checks cells that
    parse, assert, print nothing and need the solution (else :class:`CourseError`)."""
    last = hidden if hidden is not None else tests
    between = [i for i in range(solution + 1, last) if i != tests]
    if between:
        raise CourseError(f"{where}: cell(s) {between} lie between its 'solution' cell and "
                          "its tests; move them before the solution or after the tests")
    if not _source(cells[solution]).strip():
        raise CourseError(f"{where}: the 'solution' cell {solution} is empty")
    checks = [(TAG_TESTS, tests)] + ([(TAG_HIDDEN, hidden)] if hidden is not None else [])
    for kind, index in checks:
        _check_test_source(where, kind, _source(cells[index]))
    _check_tests_need_the_solution(where, cells, solution, checks)


def _check_no_stray_tags(notebook: str, cells, inside: set[int]) -> None:
    """Every cell with an exercise tag lies inside an exercise (else :class:`CourseError`)."""
    for i, cell in enumerate(cells):
        tags = _exercise_tags(cell)
        if tags and i not in inside:
            before = [j for j in range(i) if cells[j].get("cell_type") == "markdown"]
            seen = (f" (the Markdown cell {before[-1]} before it starts "
                    f"{_source(cells[before[-1]]).lstrip()[:40]!r})" if before else "")
            raise CourseError(f"{notebook}: cell {i} is tagged {tags[0]!r} but belongs to no "
                              "exercise; put it after a Markdown cell starting "
                              f"'**Exercise N.**'{seen}")
