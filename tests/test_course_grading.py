"""Grading hostile submissions (modlib.companion.course_grading, sandbox, course_vars).

One grading run over a class of hand-made submissions of the tiny notebook of test_course.py:
an honest one (the master copy), a blank one (the untouched student copy) and hostile ones,
generated here (never committed): one writes outside its folder, one reads and one rewrites the
autograder files and the grades, one tries to patch the checks into passing, one loops forever,
one allocates without bound, one forks without bound, one opens sockets; plus a stray notebook,
a second copy, a link to the course's solutions and a file that is no notebook. Each must cost
its own rows, with the reason, while the honest submission gets full marks and every file under
the course folder outside grades/ (and every submission) is byte-identical afterwards. The
limits are short (flags), so the run takes one time limit plus seconds per notebook (about a
minute on an idle machine, two under load).
"""

import hashlib
import json
import os
import pickle
import shutil
import socket
import threading
import time

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("otter", reason="otter-grader is not installed: pip install -e '.[course]'")

from modlib.companion import course, course_vars, sandbox  # noqa: E402
from test_course import tiny_cells, write_notebook  # noqa: E402

TIME_LIMIT = 25.0           # seconds per notebook: the honest run takes a few
MEMORY_GIB = 1.0
PROCESSES = 96


def _digests(folder, skip=()):
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            if not any(path.startswith(str(s)) for s in skip):
                with open(path, "rb") as handle:
                    found[path] = hashlib.sha256(handle.read()).hexdigest()
    return found


def _hostile(cells_source):
    """A submission of 98_tiny whose code cells are ``cells_source`` (wrong or no answers)."""
    cells = [nbformat.v4.new_markdown_cell("# 98 · Tiny")]
    cells += [nbformat.v4.new_code_cell(source) for source in cells_source]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                 "display_name": "Python 3"}
    nb.metadata["otter"] = {"assignment_name": "98_tiny"}
    return nb


def _forged_variables():
    """A variables file whose unpickling would patch the checks into passing (doctest and
    otter's assert machinery), if the checks ran the submission's pickles as code."""
    class Patch:
        def __reduce__(self):
            return (exec, ("import doctest; doctest.DocTestRunner.run = "
                           "lambda *a, **k: None",))
    return pickle.dumps({"values": {"hyp": pickle.dumps(Patch()), "squares": pickle.dumps([])},
                         "skipped": {}})


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    notebooks = root / "notebooks"
    notebooks.mkdir()
    master = write_notebook(notebooks / "98_tiny.ipynb", tiny_cells())
    course_dir = root / "build" / "course"
    course.build([master], course_dir, echo=lambda _: None)
    grades = course_dir / "grades"
    grades.mkdir()
    (grades / "grades.csv").write_text("student,score\nearlier,1\n")
    autograder = course_dir / "autograder" / "98_tiny" / "autograder.zip"
    outside = root / "planted.txt"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    forged = _forged_variables()
    subs = root / "submissions"
    hostile = {
        "writer": [f"open({str(outside)!r}, 'w').write('was here')\nhyp = 5.0"],
        "reader": [f"import os\nprint(os.listdir({str(course_dir / 'autograder')!r}))\n"
                   f"secret = open({str(autograder)!r}, 'rb').read()"],
        "rewriter": [f"open({str(autograder)!r}, 'wb').write(b'')",
                     f"open({str(grades / 'grades.csv')!r}, 'w').write('x')"],
        "patcher": ["hyp, squares = 4, []\n"
                    "import builtins, doctest\n"
                    "builtins.AssertionError = type('Quiet', (Exception,), {})\n"
                    "doctest.DocTestRunner.run = lambda *a, **k: None\n"
                    "import os\nos.makedirs('tests', exist_ok=True)\n"
                    "open('tests/exercise_1.py', 'w').write('test = {\"suites\": []}')\n"
                    "import modlib.companion.course_vars as v\n"
                    f"v.dump = lambda ns, names, path: open(path, 'wb').write({forged!r})"],
        "looper": ["import time\nwhile True:\n    time.sleep(1)"],
        "allocator": ["hog = []\nwhile True:\n    hog.append(bytearray(64 * 2 ** 20))"],
        "forker": ["import os, time\nchildren = []\nwhile True:\n    pid = os.fork()\n"
                   "    if pid == 0:\n        time.sleep(600)\n        os._exit(0)\n"
                   "    children.append(pid)"],
        "socket": ["import socket\nsocket.create_connection(('127.0.0.1', "
                   f"{port}), timeout=5)",
                   "socket.create_connection(('1.1.1.1', 53), timeout=5)"],
    }
    for student, sources in hostile.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(_hostile(sources), subs / student / "98_tiny.ipynb")
    for student, source in (("honest", master),
                            ("blank", course_dir / "student" / "98_tiny.ipynb")):
        (subs / student).mkdir(parents=True)
        shutil.copyfile(source, subs / student / "98_tiny.ipynb")
    shutil.copyfile(course_dir / "student" / "98_tiny.ipynb", subs / "blank" / "98_tiny_copy.ipynb")
    (subs / "stray").mkdir()
    write_notebook(subs / "stray" / "55_notes.ipynb", tiny_cells())
    (subs / "linker").mkdir()   # a link to the course's own solutions
    os.symlink(course_dir / "autograder" / "98_tiny" / "98_tiny.ipynb",
               subs / "linker" / "98_tiny.ipynb")
    (subs / "junk").mkdir()
    (subs / "junk" / "98_tiny.ipynb").write_text("{not a notebook")
    before = _digests(course_dir, skip=[grades]) | _digests(subs)
    settings = course.Settings(profile="default", seconds=TIME_LIMIT,
                               memory=int(MEMORY_GIB * 1024 ** 3), processes=PROCESSES)
    messages = []
    start = time.monotonic()
    rows = course.grade(subs, out=grades, course=course_dir, echo=messages.append,
                        settings=settings)
    took = time.monotonic() - start
    connections = []
    try:
        connections.append(listener.accept())
    except OSError:
        pass
    listener.close()
    after = _digests(course_dir, skip=[grades]) | _digests(subs)
    by_student = {}
    for row in rows:
        by_student.setdefault(row["student"], []).append(row)
    return {"rows": rows, "by": by_student, "before": before, "after": after, "took": took,
            "outside": outside, "connections": connections, "grades": grades,
            "messages": messages}


NO_SANDBOX = sandbox.check("bwrap")

EXPECTED = {   # student: (graded, the reason its note must give)
    "writer": (True, "FileNotFoundError"),         # the folder above its own does not exist there
    "reader": (True, "FileNotFoundError"),         # the autograders are not in the sandbox
    "rewriter": (True, "FileNotFoundError"),
    "socket": (True, "ConnectionRefusedError"),    # its own loopback: nobody listens there
    "patcher": (True, "hyp was not carried to the checks (refused"),
    "forker": (False, "process limit of 96"),      # its children hold every process slot
    "looper": (False, f"exceeded the time limit of {TIME_LIMIT:g} s"),
    "allocator": (False, f"exceeded the memory limit of {MEMORY_GIB:g} GiB"),
    "stray": (False, "no autograder for notebook '55_notes'"),
    "junk": (False, "is not a notebook"),
    "linker": (False, "is a link or a special file"),
}


@pytest.mark.slow
@pytest.mark.skipif(NO_SANDBOX is not None, reason=f"no bubblewrap sandbox here: {NO_SANDBOX}")
def test_a_class_with_hostile_submissions(graded):
    """One test (a single grading run, so that pytest's workers do not repeat it)."""
    by = graded["by"]
    assert sorted(by) == ["allocator", "blank", "forker", "honest", "junk", "linker", "looper",
                          "patcher", "reader", "rewriter", "socket", "stray", "writer"]
    # the honest submission gets full marks, the blank one zero with the reason
    assert [(r["exercise"], r["score"], r["possible"], r["graded"], r["note"])
            for r in by["honest"]] == [("exercise_1", 1.0, 1.0, True, ""),
                                       ("exercise_2", 2.0, 2.0, True, "")]
    blank = [r for r in by["blank"] if r["file"].endswith("/98_tiny.ipynb")]
    assert [(r["score"], r["graded"], r["note"]) for r in blank] == [
        (0.0, True, "public: NameError: name 'hyp' is not defined | "
                    "hidden: NameError: name 'hyp' is not defined"),
        (0.0, True, "public: NameError: name 'squares' is not defined")]
    # the second copy of blank's notebook: its own rows, not graded, with the reason
    second = [r for r in by["blank"] if r["file"].endswith("98_tiny_copy.ipynb")]
    assert [r["graded"] for r in second] == [False, False]
    assert "a second submission of blank for 98_tiny" in second[0]["note"]
    # every hostile submission: zero, its own rows, the right reason
    wrong = []
    for student, (graded_flag, reason) in EXPECTED.items():
        rows = by[student]
        notes = " ".join(r["note"] for r in rows)
        if {r["graded"] for r in rows} != {graded_flag} or reason not in notes \
                or any(r["score"] for r in rows):
            wrong.append(f"{student}: expected graded={graded_flag} and {reason!r}, got "
                         f"{[(r['score'], r['graded']) for r in rows]}: {notes[:300]}")
        if not graded_flag and not any(student in m and m.startswith("WARNING")
                                       for m in graded["messages"]):
            wrong.append(f"{student}: no warning on the terminal")
    assert wrong == []
    # patching the checks did not pass them: the forged variables were refused as code
    patcher = " ".join(r["note"] for r in by["patcher"])
    assert "builtins.exec is not allowed" in patcher
    assert "public: NameError: name 'hyp' is not defined" in patcher
    # the teacher's files (everything under the course folder but grades/) and every
    # submission are byte-identical; nothing was written outside; no connection got out
    assert graded["after"] == graded["before"]
    assert not graded["outside"].exists()
    assert graded["connections"] == []
    table = (graded["grades"] / "grades.csv").read_text()
    assert table.startswith("student,notebook,exercise,score,possible,graded,note,file")
    # no process of a submission outlives its grading
    uid = sandbox.sandbox_uid()
    assert [e.name for e in os.scandir("/proc") if e.name.isdigit() and _owner(e.path) == uid] \
        == []
    # within the limits plus a margin: one time limit (the looper) and seconds per notebook
    assert graded["took"] < TIME_LIMIT + 12 * 30


def _owner(path):
    try:
        return os.stat(path).st_uid
    except OSError:
        return None


@pytest.mark.skipif(sandbox.check("user") is not None,
                    reason=f"no throw-away user here: {sandbox.check('user')}")
def test_without_namespaces_a_throw_away_user_is_the_fallback(tmp_path):
    """isolation=user (what `auto` falls back to where bwrap cannot run): the course's folders
    are hidden by permissions during the run and restored, a process left behind is killed."""
    master = write_notebook(tmp_path / "98_tiny.ipynb", tiny_cells())
    course_dir = tmp_path / "build" / "course"
    course.build([master], course_dir, echo=lambda _: None)
    autograder = course_dir / "autograder" / "98_tiny" / "autograder.zip"
    subs = tmp_path / "submissions"
    hostile = {"reader": [f"secret = open({str(autograder)!r}, 'rb').read()"],
               "daemon": ["import os, time\nif os.fork() == 0:\n    os.setsid()\n"
                          "    time.sleep(600)\n    os._exit(0)\nhyp = 1.0"]}
    for student, sources in hostile.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(_hostile(sources), subs / student / "98_tiny.ipynb")
    (subs / "honest").mkdir()
    shutil.copyfile(master, subs / "honest" / "98_tiny.ipynb")
    before = _digests(course_dir) | _digests(subs)
    modes = {p: p.stat().st_mode for p in (course_dir, subs)}
    runs = sandbox._RUNS
    rows = course.grade(subs, out=tmp_path / "grades", course=course_dir, echo=lambda _: None,
                        settings=course.Settings(isolation="user", seconds=TIME_LIMIT))
    by = {}
    for row in rows:
        by.setdefault(row["student"], []).append(row)
    assert [r["score"] for r in by["honest"]] == [1.0, 2.0]
    assert "PermissionError" in by["reader"][0]["note"]
    assert [r["score"] for r in by["daemon"]] == [0.0, 0.0]
    assert _digests(course_dir) | _digests(subs) == before
    assert {p: p.stat().st_mode for p in modes} == modes
    uids = {sandbox.sandbox_uid() + 4000 * k for k in range(runs + 1, sandbox._RUNS + 1)}
    assert sandbox._RUNS > runs
    assert [e.name for e in os.scandir("/proc") if e.name.isdigit()
            and _owner(e.path) in uids] == []


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="a throw-away user needs root and setpriv")
def test_a_throw_away_user_cannot_read_hidden_folders_nor_outlive_its_run(tmp_path):
    """The fallback's mechanism with shell commands (no Python needed): another user id, the
    hidden folder unreadable, the process limit applied, a detached process killed."""
    secret = tmp_path / "course"
    secret.mkdir()
    (secret / "autograder.zip").write_text("hidden checks")
    secret.chmod(0o755)
    tmp_path.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    script = (f"id -u > uid; cat {secret}/autograder.zip > read 2>&1; "
              "(setsid sleep 600 &) ; for i in $(seq 40); do (sleep 5 &) 2>>forks; done; "
              "echo done > end")
    runs = sandbox._RUNS
    with sandbox.hidden([secret]):
        outcome = sandbox.run(["/bin/sh", "-c", script], work, [], {"PATH": "/usr/bin:/bin"},
                              sandbox.Limits(seconds=20, memory=2 ** 30, processes=16),
                              mechanism="user", checked=True)   # no Python needed
    uid = sandbox.sandbox_uid() + 4000 * (runs + 1)
    assert outcome.returncode == 0 and not outcome.timed_out, outcome
    assert (work / "uid").read_text().strip() == str(uid)
    assert "Permission denied" in (work / "read").read_text()
    assert "fork" in (work / "forks").read_text().lower()     # the process limit of 16
    assert secret.stat().st_mode & 0o777 == 0o755              # restored
    assert [e.name for e in os.scandir("/proc") if e.name.isdigit()
            and _owner(e.path) == uid] == []


def test_the_data_unpickler_refuses_code_and_patching():
    import math

    import numpy as np

    class Run:
        def __reduce__(self):
            return (os.system, ("true",))

    with pytest.raises(pickle.UnpicklingError, match="posix.system is not allowed"):
        course_vars.loads(pickle.dumps(Run()))
    # a module reached by name may not be given state (that would patch numpy.testing)
    patch = (b"\x80\x05cmodlib.companion.course_vars\n_module\n(X\x05\x00\x00\x00numpyt"
             b"R}X\x07\x00\x00\x00testingK\x01sb.")
    with pytest.raises(pickle.UnpicklingError, match="setting state on <module 'numpy'"):
        course_vars.loads(patch)
    assert not isinstance(np.testing, int)
    # data comes back equal; modules and library functions by name
    namespace = {"a": [1.5, (2, "x")], "arr": np.arange(4.0), "np": np, "sqrt": math.sqrt,
                 "own": lambda x: x}
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"vars-{os.getpid()}.pkl")
    skipped = course_vars.dump(namespace, list(namespace), path)
    env, refused = course_vars.load(path)
    os.unlink(path)
    assert set(skipped) == {"own"} and "not a library" in skipped["own"]
    assert env["a"] == [1.5, (2, "x")] and env["np"] is np and env["sqrt"] is math.sqrt
    assert np.array_equal(env["arr"], np.arange(4.0)) and "own" in refused


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="seconds=0 is not allowed"):
        sandbox.Limits(seconds=0, memory=1)
    assert course.main(["grade", "x", "--time-limit", "-1"]) == 1
