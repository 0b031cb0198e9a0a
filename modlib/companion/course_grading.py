"""Grading of submitted notebooks, one sandbox per submission (``make grade``).

:func:`grade` grades every ``.ipynb`` below a folder and writes ``grades.csv`` and
``grades.json``: one row per submission and exercise, with its score, the points possible and,
for every lost point, the reason. Each submission costs at most its own rows: whatever it does
(runs forever, allocates without bound, forks, opens sockets, writes or reads outside its
folder, is no notebook at all, answers no notebook of the course, is handed in twice), the
grading goes on with the next one.

:func:`grade_one` grades one submission in two sandboxed steps
(:mod:`modlib.companion.sandbox`, :mod:`modlib.companion.course_worker`):

1. its cells run top to bottom in a fresh kernel, in a throw-away working copy, isolated from
   the course's files, the other submissions and the grades, without network, within the
   wall-clock, memory and process limits (:class:`Settings`); the variables its checks read are
   saved as data (:mod:`modlib.companion.course_vars`);
2. only then are its public and hidden checks (from the autograder zip of ``make student``)
   copied into a second, fresh sandbox, where a fresh interpreter runs them over those
   variables. The submission's code never runs there.

The run's executed notebook, figures and metrics are copied out (regular files only, within a
size budget) to ``runs/<student>/<notebook>/``, never to the committed ``figures/`` and
``results/``. ``docs/course.md`` gives the threat model. :func:`verify` grades the master and
the untouched student copies of the course's own notebooks.
"""

from __future__ import annotations

import ast
import copy
import csv
import doctest
import json
import os
import shutil
import stat
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from .. import paths, store
from . import sandbox
from .course_assign import _require_otter, build, course_dir
from .course_format import CourseError, _source, _tags

GIB = 1024 ** 3
MAX_NOTEBOOK_BYTES = 64 * 1024 ** 2      # a submitted notebook larger than this is refused
MAX_COPY_BYTES = 256 * 1024 ** 2         # what one run may leave in runs/ (executed notebook, ...)
# Wall-clock limit per notebook and profile: smoke notebooks run in seconds to a minute with
# their models cached, the slowest default-profile notebook (06) in about 20 minutes; the limits
# leave a factor of five for a slower machine or a cold cache.
TIME_LIMITS = {"smoke": 300.0, "default": 7200.0, "paper": 24 * 3600.0}
MEMORY_LIMIT = 6 * GIB
PROCESS_LIMIT = 512


@dataclass(frozen=True)
class Settings:
    """How submissions are run: ``isolation`` (``auto``: ``bwrap`` where it works, else ``user``
    as root; or one of :data:`sandbox.MECHANISMS`, ``none`` for trusted submissions only), the
    limits per notebook (:class:`sandbox.Limits`: wall-clock seconds, memory in bytes, processes
    and threads), and the ``profile`` whose parameters the notebooks run with."""

    profile: str = "default"
    isolation: str = "auto"
    seconds: float | None = None        # None: TIME_LIMITS[profile]
    memory: int = MEMORY_LIMIT
    processes: int = PROCESS_LIMIT

    def limits(self) -> sandbox.Limits:
        seconds = self.seconds if self.seconds is not None else TIME_LIMITS.get(
            self.profile, TIME_LIMITS["default"])
        return sandbox.Limits(seconds=seconds, memory=self.memory, processes=self.processes)


class SubmissionFault(Exception):
    """A submission could not be graded (the message is the reason in its rows)."""


def _assignment_name(submission: Path) -> str:
    """The notebook a submission answers: otter's assignment name in its metadata, else the
    file name's stem."""
    try:
        if not stat.S_ISREG(os.lstat(submission).st_mode):
            return submission.stem
        meta = json.loads(submission.read_text())["metadata"]
        return meta.get("otter", {}).get("assignment_name") or submission.stem
    except (OSError, ValueError, KeyError, TypeError, AttributeError):   # refused later
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
    ``notebook`` (``notebooks/profiles.toml``, as ``python -m modlib.companion.run --profile``
    sets them), injected by papermill after the cell tagged ``parameters``.

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


def _read_submission(submission: Path, notebook: str, profile: str) -> dict:
    """The submitted notebook as plain dicts, with the profile's parameters and the grading
    kernel; :class:`SubmissionFault` when it is unreadable, too large or no notebook."""
    try:
        info = os.lstat(submission)
        if not stat.S_ISREG(info.st_mode):
            raise SubmissionFault(f"{submission} is a link or a special file, not a notebook "
                                  "file (a link could hand in the course's own solutions)")
        size = info.st_size
        if size > MAX_NOTEBOOK_BYTES:
            raise SubmissionFault(f"{submission} is {size / 1024 ** 2:.0f} MB, more than a "
                                  f"notebook may be ({MAX_NOTEBOOK_BYTES / 1024 ** 2:.0f} MB)")
        fd = os.open(submission, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            nb = json.loads(handle.read().decode("utf-8"))
        if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
            raise TypeError("no list of cells")
        import nbformat

        nb = json.loads(nbformat.writes(nbformat.from_dict(nb)))
    except SubmissionFault:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as err:
        raise SubmissionFault(f"{submission} is not a notebook ({type(err).__name__}: "
                              f"{str(err)[:200]})") from None
    if profile != "default":
        nb = with_profile(nb, notebook, profile)
    nb.setdefault("metadata", {}).setdefault("otter", {})["assignment_name"] = notebook
    nb["metadata"]["kernelspec"] = _grading_kernel() or {
        "name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def names_read(tests_dir: Path) -> list[str]:
    """Every name the otter test files of ``tests_dir`` read or bind (the variables to carry
    from the submission to its checks), builtins left out."""
    import builtins

    from .course_worker import read_test_file

    names: set[str] = set()
    for path in sorted(tests_dir.glob("*.py")):
        for case in read_test_file(path):
            for example in doctest.DocTestParser().get_examples(case["code"]):
                try:
                    tree = ast.parse(example.source)
                except SyntaxError:
                    continue
                names |= {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    return sorted(names - set(dir(builtins)))


def _unpack_tests(autograder_zip: Path, dest: Path) -> Path:
    """The test files of ``autograder_zip`` (``tests/*.py``) extracted to ``dest/tests``."""
    folder = dest / "tests"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(autograder_zip) as archive:
        for name in archive.namelist():
            if name.startswith("tests/") and name.endswith(".py") and "/" not in name[6:]:
                (folder / name[6:]).write_bytes(archive.read(name))
    return folder


def _cache_layer(folder: Path) -> Path:
    """A throw-away cache for one run: the model cache's folders recreated in ``folder``, its
    files linked (the real cache is mounted read-only), lock files left out. A run reads every
    cached model and may add what it computes, which is lost with ``folder``."""
    real = paths.cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if real.is_dir():
        for root, dirs, files in os.walk(real):
            here = folder / Path(root).relative_to(real)
            here.mkdir(exist_ok=True)
            for name in files:
                if not name.endswith(".lock"):
                    (here / name).symlink_to(Path(root) / name)
    return real


def _environment(cache: str) -> dict[str, str]:
    """The sandbox's whole environment: where the run writes (its working folder), the cache
    layer, headless progress, one thread per library, and the path of ``modlib``."""
    import modlib

    package_root = str(Path(modlib.__file__).resolve().parent.parent)
    return {"HOME": "{WORK}/.home", "TMPDIR": "{WORK}/.tmp", "MPLCONFIGDIR": "{WORK}/.tmp",
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": package_root,
            "MODLIB_CACHE_DIR": cache, "MODLIB_FIGURES_DIR": "{WORK}/figures",
            "MODLIB_METRICS_DIR": "{WORK}/metrics", "MODLIB_BUILD_DIR": "{WORK}/build",
            "MODLIB_HEADLESS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS", "1"), "LANG": "C.UTF-8"}


def _worker(*args: str) -> list[str]:
    """The command that runs :mod:`modlib.companion.course_worker` with ``args`` in isolated
    mode (``-I``: no environment variables, no current folder on the path)."""
    import modlib

    root = str(Path(modlib.__file__).resolve().parent.parent)
    boot = (f"import sys; sys.path.insert(0, {root!r}); "
            "from modlib.companion.course_worker import main; sys.exit(main(sys.argv[1:]))")
    return [sys.executable, "-I", "-c", boot, *args]


def _run(settings: Settings, work: Path, argv: list[str], cache: Path) -> sandbox.Outcome:
    for name in (".home", ".tmp"):
        (work / name).mkdir(exist_ok=True)
    return sandbox.run(argv, work, sandbox.python_environment() + [cache], _environment(
        str(work / ".cache") if settings.isolation == "none" else "{WORK}/.cache"),
        settings.limits(), mechanism=settings.isolation)


def _execute(nb: dict, notebook: str, names: list[str], work: Path, settings: Settings) -> dict:
    """Step 1 in a sandbox: run the cells, save the variables. Returns the executed notebook;
    :class:`SubmissionFault` when the run hit a limit or the kernel died."""
    (work / f"{notebook}.ipynb").write_text(json.dumps(nb))   # otter.Notebook() opens it
    cache = _cache_layer(work / ".cache")
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name", "python3")
    limits = settings.limits()
    outcome = _run(settings, work, _worker("execute", f"{notebook}.ipynb", kernel,
                                           json.dumps(names)), cache)
    if outcome.timed_out:
        raise SubmissionFault(f"exceeded the time limit of {limits.seconds:g} s per notebook "
                              "(--time-limit); stopped")
    executed = _read_json(work / "executed.ipynb", MAX_NOTEBOOK_BYTES * 4) or {"cells": []}
    status = _read_json(work / "status.json", 10_000) or {}
    error = first_error(executed)
    memory = f"exceeded the memory limit of {limits.memory / GIB:g} GiB (--memory-limit)"
    if "MemoryError" in error:
        raise SubmissionFault(f"{memory}: {error}")
    if status.get("kernel_died") or outcome.returncode != 0 or not executed["cells"]:
        reason = status.get("message") or outcome.stderr.strip()[-300:] or "no output"
        raise SubmissionFault(f"its run ended abnormally ({reason}); a kernel that dies has "
                              f"usually {memory}, or the notebook ended its own process")
    return executed


def _read_json(path: Path, max_bytes: int):
    """The JSON in ``path`` if it is a regular file (not a link) of at most ``max_bytes``."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError):
        return None


def _copy_out(source: Path, dest: Path, budget: int) -> int:
    """Copy the regular files below ``source`` (never links, devices or pipes) to ``dest``
    while they fit in ``budget`` bytes; returns what is left of the budget."""
    for root, _, files in os.walk(source):
        for name in sorted(files):
            path = Path(root) / name
            info = os.lstat(path)
            if not stat.S_ISREG(info.st_mode) or info.st_size > budget:
                continue
            target = dest / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as handle, open(target, "wb") as out:
                shutil.copyfileobj(handle, out)
            budget -= info.st_size
    return budget


def _check(tests: Path, variables: Path, work: Path, settings: Settings) -> dict:
    """Step 2 in a fresh sandbox: the checks over the saved variables. Returns the worker's
    ``{"exercises": ..., "skipped": ...}``; :class:`SubmissionFault` if the checks could not
    run."""
    shutil.copytree(tests, work / "tests")
    info = os.lstat(variables) if os.path.lexists(variables) else None
    if info is None or not stat.S_ISREG(info.st_mode):
        raise SubmissionFault("its variables were not saved (the notebook's last cell never "
                              "ran)")
    fd = os.open(variables, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle, open(work / "variables.pkl", "wb") as out:
        shutil.copyfileobj(handle, out)
    limits = settings.limits()
    cache = _cache_layer(work / ".cache")
    outcome = _run(settings, work, _worker("check", "tests", "variables.pkl"), cache)
    if outcome.timed_out:
        raise SubmissionFault(f"its checks exceeded the time limit of {limits.seconds:g} s "
                              "(--time-limit)")
    lines = outcome.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        raise SubmissionFault(f"its checks could not run (exit status {outcome.returncode}: "
                              f"{outcome.stderr.strip()[-300:]})") from None


def grade_one(submission: Path, autograder_zip: Path, notebook: str,
              profile: str = "default", run_dir: Path | None = None,
              settings: Settings | None = None) -> tuple[dict[str, tuple], str]:
    """Grade one notebook in two sandboxes (module docstring).

    The notebook runs top to bottom (a failing cell does not stop the run), with ``profile``'s
    parameters (:func:`with_profile`) unless ``default``; then every public and hidden check
    runs; a failed check scores 0. A notebook without otter's assignment name in its metadata is
    graded as ``notebook``. The executed notebook is copied to ``run_dir/<notebook>.ipynb`` and
    the run's figures and metrics to ``run_dir/figures`` and ``run_dir/metrics``.

    Returns:
        ``({exercise_name: (score, possible, failures)}, notes)``: ``failures`` says which of
        the exercise's checks failed and how; ``notes`` is :func:`first_error` of the executed
        notebook and the variables that could not be carried to the checks (``""``: none).

    Raises:
        SubmissionFault: the file is no notebook, its run exceeded a limit or died, or its
            checks could not run (the message is the reason).
        sandbox.SandboxError: the isolation asked for is not available here.
    """
    settings = settings or Settings(profile=profile)
    nb = _read_submission(Path(submission), notebook, settings.profile)
    with tempfile.TemporaryDirectory(prefix="grading-") as tmp:
        tmp = Path(tmp)
        os.chmod(tmp, 0o711)
        tests = _unpack_tests(autograder_zip, tmp / "grader")
        os.chmod(tmp / "grader", 0o700)
        (tmp / "run").mkdir()
        (tmp / "check").mkdir()
        executed = _execute(nb, notebook, names_read(tests), tmp / "run", settings)
        if run_dir is not None:
            run_dir = Path(run_dir)
            shutil.rmtree(run_dir, ignore_errors=True)
            run_dir.mkdir(parents=True)
            store.write_json(run_dir / f"{notebook}.ipynb", executed)
            budget = MAX_COPY_BYTES
            for name in ("figures", "metrics"):
                if (tmp / "run" / name).is_dir():
                    budget = _copy_out(tmp / "run" / name, run_dir / name, budget)
        error = first_error(executed)
        if "BlockingIOError" in error:
            error += (f" (the process limit of {settings.limits().processes} processes and "
                      "threads per notebook, --process-limit)")
        try:
            result = _check(tests, tmp / "run" / "variables.pkl", tmp / "check", settings)
        except SubmissionFault as fault:
            raise SubmissionFault("; ".join(p for p in (str(fault), error) if p)) from None
    scores = {name: (float(s), float(p), str(f)) for name, (s, p, f) in
              result.get("exercises", {}).items()}
    skipped = result.get("skipped", {})
    notes = [error] + [
        f"{name} was not carried to the checks ({reason})" for name, reason in skipped.items()]
    return scores, "; ".join(note for note in notes if note)


def _plan(submissions: Path, course: Path, by_notebook: dict) -> list[tuple]:
    """``(file, notebook, autograder zip, student, fault)`` for every notebook below
    ``submissions``; ``fault`` is the reason it will not be graded (unknown notebook, a second
    file for the same student and notebook), else ``""``."""
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
    plan, seen = [], {}
    for file in files:
        name = _assignment_name(file)
        zip_path = course / "autograder" / name / "autograder.zip"
        relative = file.parent.relative_to(base)
        student = str(relative) if str(relative) != "." else file.stem
        fault = ""
        if name not in by_notebook or not zip_path.is_file():
            known = ", ".join(sorted(by_notebook)) or "none"
            fault = (f"{file}: no autograder for notebook {name!r} in {course} (notebooks with "
                     f"exercises: {known}; rerun `make student` if it is new)")
        elif (student, name) in seen:
            fault = (f"{file}: a second submission of {student} for {name} (graded: "
                     f"{seen[student, name]})")
        else:
            seen[student, name] = file
        plan.append((file, name, zip_path, student, fault))
    return plan


def _rows(file, name, student, exercises, scores, notes, fault) -> list[dict]:
    """The rows of one submission: one per exercise of ``name`` (one row with no exercise for a
    notebook the course does not know); ``graded`` False and the reason in ``note`` when
    ``fault``."""
    if not exercises:
        return [{"student": student, "notebook": name, "exercise": "", "score": 0.0,
                 "possible": 0.0, "graded": False, "note": fault, "file": str(file)}]
    rows = []
    for exercise in exercises:
        graded = exercise["name"] in scores
        score, out_of, failures = scores.get(exercise["name"], (0.0, exercise["points"], ""))
        note = fault or ("" if graded else f"no result for {exercise['name']} (is the "
                         "autograder older than exercises.json? rerun `make student`)")
        if graded:
            note = "; ".join(p for p in (failures, notes if score < out_of else "") if p)
        rows.append({"student": student, "notebook": name, "exercise": exercise["name"],
                     "score": score, "possible": out_of, "graded": graded, "note": note,
                     "file": str(file)})
    return rows


def grade(submissions: Path, out: Path | None = None, course: Path | None = None,
          profile: str = "default", echo=print, settings: Settings | None = None) -> list[dict]:
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
        settings: isolation and limits (:class:`Settings`; its profile wins over ``profile``).

    Returns:
        Rows ``{"student", "notebook", "exercise", "score", "possible", "graded", "note",
        "file"}``; ``graded`` is False (score 0, the reason in ``note``) for a submission that
        could not be graded: no notebook, unknown notebook (one row, exercise ``""``), handed in
        twice, over a limit, or its run died. For an exercise short of full marks, ``note`` says
        which checks failed and how, and the notebook's first error.

    Raises:
        CourseError: ``submissions`` holds no notebook, ``make student`` has not run, otter is
            not installed, or the isolation asked for is not available here (the message says
            why and how to override).
    """
    _require_otter()
    settings = settings or Settings(profile=profile)
    settings = replace(settings, isolation=isolation(settings.isolation, echo))
    _probe(settings)
    submissions = Path(submissions)
    course = Path(course) if course is not None else course_dir()
    out = Path(out) if out is not None else course / "grades"
    listed = course / "exercises.json"
    if not listed.is_file():
        raise CourseError(f"{listed} is missing: run `make student` first")
    by_notebook: dict[str, list[dict]] = {}
    for exercise in json.loads(listed.read_text()):
        by_notebook.setdefault(exercise["notebook"], []).append(exercise)
    plan = _plan(submissions, course, by_notebook)
    hide = [course, submissions if submissions.is_dir() else submissions.parent, out,
            paths.notebooks_dir()] if settings.isolation == "user" else []
    with sandbox.hidden(hide):
        rows = _grade_all(plan, by_notebook, out, settings, echo)
    _write_grades(out, rows)
    echo(f"grades: {out / 'grades.csv'}")
    return rows


def isolation(asked: str, echo=print) -> str:
    """The isolation to grade with: ``asked``, or for ``auto`` bwrap where it works, else a
    throw-away user (root only; with a warning: no network isolation).

    Raises:
        CourseError: what was asked for is not available here; the message says why and how
            to override (``--isolation none``, for trusted submissions only).
    """
    override = ("Refusing to grade: a submission runs code with your rights. Pass --isolation "
                "none (make grade ISOLATION=none) only for submissions you trust.")
    if asked != "auto":
        reason = sandbox.check(asked)
        if reason:
            raise CourseError(f"cannot isolate the submissions with {asked}: {reason}. "
                              f"{override}")
        return asked
    reasons = {}
    for mechanism in ("bwrap", "user"):
        reasons[mechanism] = sandbox.check(mechanism)
        if reasons[mechanism] is None:
            if mechanism == "user":
                echo(f"WARNING no bubblewrap sandbox ({reasons['bwrap']}): each submission runs "
                     "as a throw-away user, with the course's folders hidden from it but "
                     "without network isolation")
            return mechanism
    raise CourseError("cannot isolate the submissions: "
                      + "; ".join(f"{m}: {r}" for m, r in reasons.items()) + f". {override}")


def _grade_all(plan, by_notebook, out, settings, echo) -> list[dict]:
    rows = []
    for i, (file, name, zip_path, student, fault) in enumerate(plan, start=1):
        start = time.time()
        scores, notes = {}, ""
        if not fault:
            scores, notes, fault = _grade_safely(file, zip_path, name, student, out, settings)
        if fault:
            echo(f"WARNING {fault}: scored 0")
        these = _rows(file, name, student, by_notebook.get(name, []), scores, notes, fault)
        rows += these
        echo(f"{i}/{len(plan)} {student} {name}: {sum(r['score'] for r in these):g}/"
             f"{sum(r['possible'] for r in these):g} ({time.time() - start:.0f} s)"
             f"{'; ' + notes if notes else ''}")
    return rows


_PROBED: set[str] = set()


def _probe(settings: Settings) -> None:
    """Refuse (:class:`CourseError`, with the reason) when a sandboxed Python cannot import
    what grading needs: this environment not readable by the throw-away user, for instance."""
    if settings.isolation in _PROBED:
        return
    with tempfile.TemporaryDirectory(prefix="grading-probe-") as tmp:
        outcome = _run(replace(settings, seconds=120.0), Path(tmp), _worker("probe"),
                       _cache_layer(Path(tmp) / ".cache"))
    if outcome.returncode != 0 or outcome.stdout.strip() != "ok":
        raise CourseError(f"a sandboxed Python cannot run the grader (exit status "
                          f"{outcome.returncode}: {outcome.stderr.strip()[-400:]}); is this "
                          "environment readable by other users (umask 022)?")
    _PROBED.add(settings.isolation)


def _grade_safely(file, zip_path, name, student, out, settings) -> tuple[dict, str, str]:
    """:func:`grade_one`, with every failure of the submission turned into a reason:
    ``(scores, notes, fault)``."""
    try:
        scores, notes = grade_one(file, zip_path, name, settings.profile,
                                  out / "runs" / student / name, settings)
        return scores, notes, ""
    except (SubmissionFault, CourseError) as err:
        return {}, "", f"{file}: {str(err).splitlines()[0]}"
    except sandbox.SandboxError:
        raise
    except Exception as err:   # noqa: BLE001 - one submission must never stop the class's grading
        return {}, "", f"{file}: the grader failed on it ({type(err).__name__}: {err})"


def _write_grades(out: Path, rows: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    store.write_json(out / "grades.json", rows)

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    store.atomic_write(out / "grades.csv", write_csv)


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


def verify(notebooks: list[Path] | None = None, profile: str = "smoke", echo=print,
           settings: Settings | None = None) -> list[str]:
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
        rows = grade(Path(tmp), out=out / "verify", course=out, profile=profile, echo=echo,
                     settings=replace(settings, profile=profile) if settings else None)
    found = problems(rows)
    for problem in found:
        echo(f"PROBLEM {problem}")
    echo(f"{len(exercises)} exercises in {len(stems)} notebooks: "
         + ("all score full marks with their solution and zero without" if not found
            else f"{len(found)} problems"))
    return found


