"""Student copies and grading (modlib.companion.course), on hand-made notebooks in the exercise format.

The real notebooks need trained models, so these tests build two tiny notebooks: one with two
exercises (the first with hidden tests) and one without exercises. Only ``test_grading`` starts
kernels (otter runs each graded notebook once: two notebooks).
"""

import csv
import hashlib
import json
import subprocess
import sys
import zipfile

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("otter", reason="otter-grader is not installed: pip install -e '.[course]'")

from modlib.companion import course, sandbox  # noqa: E402

NO_SANDBOX = sandbox.check("bwrap")
needs_sandbox = pytest.mark.skipif(NO_SANDBOX is not None,
                                   reason=f"grading needs a bubblewrap sandbox: {NO_SANDBOX}")

SOLUTION_1 = ["legs = [3.0, 4.0]", "hyp_squared = sum(leg ** 2 for leg in legs)",
              "hyp = math.sqrt(hyp_squared)"]
SOLUTION_2 = ["squares = [i * i for i in range(5)]"]
PUBLIC_1 = "assert abs(hyp - 5) < 1e-12, 'the hypotenuse of a 3-4 triangle is 5'"
HIDDEN_1 = "assert isinstance(hyp, float), 'hyp must be a float'"
PUBLIC_2 = "assert squares == [0, 1, 4, 9, 16]"


def _code(source, *tags):
    cell = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def _md(source):
    return nbformat.v4.new_markdown_cell(source)


def tiny_cells():
    """A master notebook in the exercise format: title, parameters, imports, two exercises."""
    return [
        _md("# 98 · Tiny\n\nA hand-made notebook for the course tests."),
        _code('profile: str = "default"  # smoke or default or paper\n'
              "seed: int = 0  # seed of everything", "parameters"),
        _code("import math\nfrom modlib import store\n"
              "store.write_metrics('98_tiny', {'seed': seed})"),
        _md("## Exercises"),
        _md("**Exercise 1.** Store the hypotenuse of a 3-4 right triangle in `hyp`."),
        _code("\n".join(SOLUTION_1), "solution"),
        _code(PUBLIC_1, "tests"),
        _code(f"for k in range(5):\n    assert hyp > k\n{HIDDEN_1}", "hidden-tests"),
        _md("**Exercise 2.** (2 points) Put the squares of 0 to 4 in the list `squares`."),
        _code("\n".join(SOLUTION_2), "solution"),
        _code(PUBLIC_2, "tests"),
        _md("## What this does not show\n\nAnything."),
    ]


def write_notebook(path, cells):
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    notebooks = root / "notebooks"
    notebooks.mkdir()
    tiny = write_notebook(notebooks / "98_tiny.ipynb", tiny_cells())
    plain = write_notebook(notebooks / "97_plain.ipynb",
                           [_md("# 97 · Plain"), _code("x = 1")])
    old = write_notebook(notebooks / "96_old.ipynb",
                         [_md("# 96 · Old"), _md("## Exercises\n\n1. **Old style.** Do it."),
                          _code("answer = 42")])
    digest = hashlib.sha256(tiny.read_bytes()).hexdigest()
    messages = []
    exercises = course.build([old, plain, tiny], root / "course", echo=messages.append)
    return {"root": root, "out": root / "course", "tiny": tiny, "plain": plain,
            "digest": digest, "exercises": exercises, "messages": messages}


def test_import_has_no_side_effects():
    code = "import sys, modlib.companion.course; assert 'otter' not in sys.modules, 'otter imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_find_exercises_reads_the_format():
    nb = nbformat.v4.new_notebook(cells=tiny_cells())
    first, second = course.find_exercises(nb, "98_tiny")
    assert (first.number, first.prompt, first.solution, first.tests, first.hidden_tests,
            first.points) == (1, 4, 5, 6, 7, 1.0)
    assert (second.number, second.prompt, second.solution, second.tests, second.hidden_tests,
            second.points) == (2, 8, 9, 10, None, 2.0)
    assert second.name == "exercise_2"


def test_build_lists_every_exercise(built):
    out = built["out"]
    listed = json.loads((out / "exercises.json").read_text())
    assert [(e["notebook"], e["name"], e["points"], e["hidden_tests"] is not None)
            for e in listed] == [("98_tiny", "exercise_1", 1.0, True),
                                 ("98_tiny", "exercise_2", 2.0, False)]
    assert sorted(p.name for p in (out / "student").iterdir()) == ["97_plain.ipynb",
                                                                  "98_tiny.ipynb"]
    assert sorted(p.name for p in (out / "autograder" / "98_tiny").iterdir()) == [
        "98_tiny.ipynb", "autograder.zip"]
    assert not (out / "autograder" / "97_plain").exists()


def test_notebook_without_exercises_is_copied_with_a_message(built):
    assert any("97_plain: no exercises" in m for m in built["messages"])
    copied = built["out"] / "student" / "97_plain.ipynb"
    assert copied.read_bytes() == built["plain"].read_bytes()


def test_exercises_in_another_format_are_left_out_with_a_warning(built):
    warnings = [m for m in built["messages"] if m.startswith("WARNING")]
    assert len(warnings) == 1 and "96_old" in warnings[0] and "left out" in warnings[0]
    assert not (built["out"] / "student" / "96_old.ipynb").exists()


def test_master_notebook_is_unchanged(built):
    assert hashlib.sha256(built["tiny"].read_bytes()).hexdigest() == built["digest"]


def test_student_copy_has_no_solution_and_no_hidden_tests(built):
    text = (built["out"] / "student" / "98_tiny.ipynb").read_text()
    for line in SOLUTION_1 + SOLUTION_2 + [HIDDEN_1, "assert hyp > k"]:
        assert line not in text, f"{line!r} is in the student copy"
    student = nbformat.reads(text, as_version=4)
    answers = [c for c in student.cells if "otter_answer_cell" in c.metadata.get("tags", [])]
    assert [c.source for c in answers] == ["...", "..."]
    # the public tests travel with the student copy, as otter checks of each exercise
    tests = student.metadata["otter"]["tests"]
    assert _shipped_cases(student) == [("exercise_1", False), ("exercise_2", False)]
    public = json.dumps(tests)
    assert "abs(hyp - 5) < 1e-12" in public and "squares == [0, 1, 4, 9, 16]" in public
    checks = [c.source for c in student.cells if "grader.check(" in c.source]
    assert checks == ['grader.check("exercise_1")', 'grader.check("exercise_2")']
    # nothing of the exercise tags or outputs survives
    assert all(not set(c.metadata.get("tags", [])) & set(course.EXERCISE_TAGS)
               for c in student.cells)
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
    # cells before the exercises stay in place: title, parameters, imports
    assert [c.source for c in student.cells[:3]] == [c.source for c in tiny_cells()[:3]]


def _test_files(out):
    from otter.test_files import OKTestFile

    with zipfile.ZipFile(out / "autograder" / "98_tiny" / "autograder.zip") as archive:
        names = sorted(n for n in archive.namelist() if n.startswith("tests/"))
        assert names == ["tests/exercise_1.py", "tests/exercise_2.py"]
        folder = out / "unzipped"
        archive.extractall(folder)
    return {n: OKTestFile.from_file(str(folder / "tests" / f"{n}.py"))
            for n in ("exercise_1", "exercise_2")}


def _score(test_file, env):
    test_file.run(dict(env))
    return test_file.score


def test_autograder_holds_public_and_hidden_tests_with_their_points(built):
    import math

    tests = _test_files(built["out"])
    assert [case.hidden for case in tests["exercise_1"].test_cases] == [False, True]
    assert [case.hidden for case in tests["exercise_2"].test_cases] == [False]
    # scored without a kernel: the right answer, one that only the public test accepts, none
    assert _score(tests["exercise_1"], {"hyp": math.sqrt(25.0)}) == 1.0
    assert _score(tests["exercise_1"], {"hyp": 5}) == 0.5     # an int: the hidden test fails
    assert _score(tests["exercise_1"], {}) == 0.0
    assert _score(tests["exercise_2"], {"squares": [0, 1, 4, 9, 16]}) == 2.0
    assert _score(tests["exercise_2"], {"squares": [0, 1, 4, 9]}) == 0.0


@pytest.mark.slow
@needs_sandbox
def test_grading_master_and_untouched_student_copies():
    """otter runs the master copy (full marks on every exercise) and the untouched student copy
    (zero on every exercise): `verify`, then the grades it wrote, one by one."""
    from modlib import paths

    notebooks = paths.build_dir() / "verify-notebooks"
    notebooks.mkdir(parents=True)
    tiny = write_notebook(notebooks / "98_tiny.ipynb", tiny_cells())
    messages = []
    assert course.verify([tiny], profile="default", echo=messages.append) == []
    assert messages[-1] == ("2 exercises in 1 notebooks: all score full marks with their "
                            "solution and zero without")
    out = course.course_dir() / "verify"
    rows = json.loads((out / "grades.json").read_text())
    assert all(r["graded"] for r in rows), "otter returned no result"
    scores = {(r["student"], r["exercise"]): (r["score"], r["possible"]) for r in rows}
    assert scores == {
        ("master", "exercise_1"): (1.0, 1.0), ("master", "exercise_2"): (2.0, 2.0),
        ("student", "exercise_1"): (0.0, 1.0), ("student", "exercise_2"): (0.0, 2.0)}
    # why the untouched copy scores 0: its checks fail on undefined answers
    notes = {(r["student"], r["exercise"]): r["note"] for r in rows}
    assert notes[("master", "exercise_1")] == notes[("master", "exercise_2")] == ""
    assert notes[("student", "exercise_1")] == (
        "public: NameError: name 'hyp' is not defined | "
        "hidden: NameError: name 'hyp' is not defined")
    assert notes[("student", "exercise_2")] == "public: NameError: name 'squares' is not defined"
    # the CSV says the same as the JSON
    with open(out / "grades.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["student"], r["exercise"], float(r["score"])) for r in table] == [
        (r["student"], r["exercise"], r["score"]) for r in rows]
    # each run wrote its metrics and executed notebook below runs/, not to results/
    run = out / "runs" / "master" / "98_tiny"
    assert json.loads((run / "metrics" / "98_tiny.json").read_text()) == {"seed": 0}
    assert not (paths.metrics_dir() / "98_tiny.json").exists()
    executed = nbformat.read(run / "98_tiny.ipynb", as_version=4)
    assert all(c.execution_count for c in executed.cells if c.cell_type == "code")


@needs_sandbox
def test_a_file_otter_cannot_grade_scores_zero_and_grading_goes_on(built, tmp_path):
    (tmp_path / "cy").mkdir()
    (tmp_path / "cy" / "98_tiny.ipynb").write_text("{not a notebook")
    messages = []
    rows = course.grade(tmp_path, out=tmp_path / "grades", course=built["out"],
                        echo=messages.append)
    assert [(r["student"], r["exercise"], r["score"], r["graded"]) for r in rows] == [
        ("cy", "exercise_1", 0.0, False), ("cy", "exercise_2", 0.0, False)]
    assert "is not a notebook" in rows[0]["note"]
    assert any(m.startswith("WARNING") and "cy" in m for m in messages)


def test_problems_reports_master_short_of_full_marks_and_student_above_zero():
    def row(student, exercise, score, note=""):
        return {"student": student, "notebook": "98_tiny", "exercise": exercise,
                "score": score, "possible": 1.0, "note": note}

    rows = [row("master", "exercise_1", 1.0), row("master", "exercise_2", 0.5, "hidden: boom"),
            row("student", "exercise_1", 0.0), row("student", "exercise_2", 1.0)]
    assert course.problems(rows) == [
        "98_tiny exercise_2: the master copy scores 0.5/1 (hidden: boom)",
        "98_tiny exercise_2: the untouched student copy scores 1/1: its checks pass without "
        "the solution"]
    assert course.problems(rows[:1] + rows[2:3]) == []


def _broken(cells_edit):
    cells = tiny_cells()
    cells_edit(cells)
    return nbformat.v4.new_notebook(cells=cells)


def _untag(index):
    def edit(cells):
        cells[index].metadata.pop("tags")
    return edit


def _set(index, source):
    def edit(cells):
        cells[index].source = source
    return edit


BROKEN = {
    "untagged solution": (_untag(9), "Exercise 2 (cell 8): no code cell tagged 'solution'",
                          "untagged code cell(s) [9] may be the solution"),
    "missing tests cell": (lambda cells: cells.pop(10),
                           "Exercise 2 (cell 8): no code cell tagged 'tests'", "public asserts"),
    "tests without assert": (_set(6, "x = hyp - 5"), "Exercise 1 (cell 4)", "no assert"),
    "tests that print": (_set(6, "assert hyp\nprint(hyp)"), "Exercise 1", "print()"),
    "bare expression": (_set(6, "assert hyp\nhyp == 5"), "Exercise 1", "bare expression"),
    "syntax error": (_set(7, "assert hyp >"), "Exercise 1", "syntax error"),
    "tests before solution": (lambda cells: cells.insert(5, cells.pop(6)),
                              "Exercise 1", "comes before the 'solution'"),
    "two solutions": (lambda cells: cells.insert(5, _code("hyp = 5.0", "solution")),
                      "Exercise 1", "2 cells tagged 'solution'"),
    "cell between solution and tests": (lambda cells: cells.insert(6, _md("A hint.")),
                                        "Exercise 1", "cell(s) [6] lie between"),
    "tests that pass without the solution": (
        _set(6, "assert math.sqrt(25) == 5"), "Exercise 1 (cell 4)",
        "'tests' cell 6 uses none of the names that the solution introduces (hyp, hyp_squared, "
        "legs), so it would pass without the solution (defined before the solution: math)"),
    "hidden tests on an earlier variable": (
        _set(7, "assert seed == 0"), "Exercise 1", "'hidden-tests' cell 7 uses none"),
    "repeated number": (_set(8, "**Exercise 1.** Again."), "Exercise 1 (cell 8)", "used twice"),
    "tag outside an exercise": (lambda cells: cells[2].metadata.update(tags=["solution"]),
                                "98_tiny: cell 2", "belongs to no exercise"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_format_errors_name_the_notebook_and_the_exercise(case):
    edit, *expected = BROKEN[case]
    with pytest.raises(course.CourseError) as err:
        course.find_exercises(_broken(edit), "98_tiny")
    message = str(err.value)
    assert message.startswith("98_tiny")
    for part in expected:
        assert part in message


def test_build_checks_every_notebook_before_writing(tmp_path):
    good = write_notebook(tmp_path / "98_tiny.ipynb", tiny_cells())
    bad = write_notebook(tmp_path / "99_bad.ipynb", _broken(_untag(5)).cells)
    with pytest.raises(course.CourseError, match=r"99_bad, Exercise 1 \(cell 4\)"):
        course.build([good, bad], tmp_path / "course", echo=lambda _: None)
    assert not (tmp_path / "course").exists()


@needs_sandbox
def test_unknown_notebook_is_one_reasoned_row_and_an_empty_folder_an_error(built, tmp_path):
    other = write_notebook(tmp_path / "55_other.ipynb", tiny_cells())
    rows = course.grade(other, out=tmp_path / "grades", course=built["out"], echo=lambda _: None)
    assert [(r["notebook"], r["exercise"], r["score"], r["possible"], r["graded"])
            for r in rows] == [("55_other", "", 0.0, 0.0, False)]
    assert "no autograder for notebook '55_other'" in rows[0]["note"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(course.CourseError, match="no .ipynb file"):
        course.grade(empty, course=built["out"], echo=lambda _: None)


def test_grading_profile_injects_the_profile_parameters():
    nb = json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=tiny_cells())))
    smoke = course.with_profile(nb, "98_tiny", "smoke")
    sources = ["".join(c["source"]) for c in smoke["cells"]]
    injected = [c for c in smoke["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and 'profile = "smoke"' in "".join(injected[0]["source"])
    assert sources.index("".join(injected[0]["source"])) == 2   # right after the parameters
    # recipe and archs of [smoke.all] are not declared by this notebook, so not injected
    assert "recipe" not in "".join(injected[0]["source"])
    with pytest.raises(course.CourseError, match="profile='fast' is not allowed"):
        course.with_profile(nb, "98_tiny", "fast")


def test_building_some_notebooks_keeps_the_others(tmp_path):
    tiny = write_notebook(tmp_path / "98_tiny.ipynb", tiny_cells())
    plain = write_notebook(tmp_path / "97_plain.ipynb", [_md("# 97 · Plain"), _code("x = 1")])
    out = tmp_path / "course"
    course.build([tiny], out, echo=lambda _: None)
    assert course.build([plain], out, echo=lambda _: None) == []
    listed = json.loads((out / "exercises.json").read_text())
    assert [e["name"] for e in listed] == ["exercise_1", "exercise_2"]
    assert (out / "autograder" / "98_tiny" / "autograder.zip").is_file()
    assert sorted(p.name for p in (out / "student").iterdir()) == ["97_plain.ipynb",
                                                                  "98_tiny.ipynb"]


def test_command_line(tmp_path, capsys):
    tiny = write_notebook(tmp_path / "98_tiny.ipynb", tiny_cells())
    bad = write_notebook(tmp_path / "99_bad.ipynb", _broken(lambda cells: cells.pop(6)).cells)
    assert course.main(["student", str(tiny), "--out", str(tmp_path / "out")]) == 0
    assert "98_tiny: 2 exercises (1 with hidden tests)" in capsys.readouterr().out
    assert course.main(["student", str(bad), "--out", str(tmp_path / "out")]) == 1
    assert "error: 99_bad, Exercise 1 (cell 4): no code cell tagged 'tests'" in \
        capsys.readouterr().err


def test_the_real_notebooks_follow_the_exercise_format(tmp_path):
    """Every notebook of notebooks/ passes the format check (nothing runs); the student copies
    of those with exercises hold `...` in place of each solution and only the public tests."""
    from modlib.companion.run import all_notebooks

    notebooks = all_notebooks()
    masters = {p.stem: nbformat.read(p, as_version=4) for p in notebooks}
    exercises = course.build(notebooks, tmp_path, echo=lambda _: None)
    for stem, master in masters.items():
        own = [e for e in exercises if e.notebook == stem]
        copy = tmp_path / "student" / f"{stem}.ipynb"
        if not copy.exists():   # an Exercises section in another format: left out
            assert not own and course._has_exercise_section(master), stem
            continue
        text = copy.read_text()
        student = nbformat.reads(text, as_version=4)
        answers = [c.source for c in student.cells
                   if "otter_answer_cell" in c.metadata.get("tags", [])]
        assert answers == ["..."] * len(own), stem
        sources = {c.source for c in student.cells}
        for exercise in own:
            assert master.cells[exercise.solution].source not in sources, exercise
        assert _shipped_cases(student) == [(e.name, False) for e in own], stem


def _shipped_cases(student):
    """(exercise, hidden) of every test case a student copy carries in its metadata."""
    tests = student.metadata.get("otter", {}).get("tests", {})
    return [(name, case["hidden"]) for name, test in sorted(tests.items())
            for suite in test["suites"] for case in suite["cases"]]


def test_first_error_names_the_cell_that_raised():
    error = nbformat.v4.new_output("error", ename="ValueError", evalue="k=0 is not allowed",
                                   traceback=[])
    cells = [_code("x = 1"), _code("k = 0\ncheck(k)"), _code("y = x")]
    cells[1].outputs, cells[2].outputs = [error], [error]
    nb = json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=cells)))
    assert course.first_error(nb) == ("cell 1 ('k = 0') raised ValueError: k=0 is not allowed "
                                      "(and 1 later cells)")
    assert course.first_error({"cells": [{"cell_type": "code", "source": "", "outputs": []}]}) \
        == ""
