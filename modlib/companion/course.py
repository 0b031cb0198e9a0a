"""Student copies and grading of the notebooks' exercises, with otter-grader: the command line.

Usage::

    python -m modlib.companion.course student                   # every notebook -> build/course/
    python -m modlib.companion.course student 05 06             # some notebooks
    python -m modlib.companion.course grade SUBMISSIONS         # every .ipynb below SUBMISSIONS
    python -m modlib.companion.course grade SUBMISSIONS --profile smoke --time-limit 120
    python -m modlib.companion.course verify 05 --profile smoke # master full marks, student zero

The master notebooks in ``notebooks/`` are the only source; student copies are generated, never
edited by hand. The work is split in three modules, re-exported here:

- :mod:`modlib.companion.course_format`: the exercise format of the master notebooks
  (:func:`find_exercises`, :class:`CourseError`);
- :mod:`modlib.companion.course_assign`: conversion to otter's format and ``otter assign``
  (:func:`to_otter`, :func:`assign`, :func:`build`: ``make student``);
- :mod:`modlib.companion.course_grading`: grading, each submission in its own sandbox with
  limits (:func:`grade`, :func:`grade_one`, :func:`verify`: ``make grade``), built on
  :mod:`modlib.companion.sandbox`, :mod:`modlib.companion.course_worker` and
  :mod:`modlib.companion.course_vars`.

Importing this module has no side effects; otter is imported only inside the functions that
use it. The workflow, the format, the choice of otter-grader and the threat model of grading
are explained in ``docs/course.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .course_assign import (OTTER_SPEC, _has_exercise_section, assign, build, course_dir,
                            to_otter)
from .course_format import (EXERCISE_HEADING, EXERCISE_TAGS, TAG_HIDDEN, TAG_SOLUTION, TAG_TESTS,
                            CourseError, Exercise, find_exercises)
from .course_grading import (GIB, MEMORY_LIMIT, PROCESS_LIMIT, TIME_LIMITS, Settings,
                             SubmissionFault, first_error, grade, grade_one, names_read,
                             problems, verify, with_profile)
from .sandbox import MECHANISMS, SandboxError

__all__ = ["CourseError", "EXERCISE_HEADING", "EXERCISE_TAGS", "Exercise", "OTTER_SPEC",
           "Settings", "SubmissionFault", "TAG_HIDDEN", "TAG_SOLUTION", "TAG_TESTS", "assign",
           "build", "course_dir", "find_exercises", "first_error", "grade", "grade_one",
           "names_read", "problems", "to_otter", "verify", "with_profile",
           "_has_exercise_section"]


def _add_limits(parser) -> None:
    """The isolation and limit flags of ``grade`` and ``verify``."""
    parser.add_argument("--isolation", choices=("auto",) + MECHANISMS, default="auto",
                        help="auto (default): a bubblewrap sandbox per submission where it "
                        "works, else a throw-away user (root only); bwrap or user: only that; "
                        "none: no isolation, only for submissions you trust")
    parser.add_argument("--time-limit", type=float, metavar="SECONDS",
                        help="wall-clock limit per notebook (default: "
                        + ", ".join(f"{p} {s:g} s" for p, s in TIME_LIMITS.items()) + ")")
    parser.add_argument("--memory-limit", type=float, metavar="GIB",
                        default=MEMORY_LIMIT / GIB, help="memory limit per notebook in GiB "
                        f"(default {MEMORY_LIMIT / GIB:g})")
    parser.add_argument("--process-limit", type=int, default=PROCESS_LIMIT, metavar="N",
                        help=f"processes and threads per notebook (default {PROCESS_LIMIT})")


def _settings(args) -> Settings:
    for flag in ("time_limit", "memory_limit", "process_limit"):
        value = getattr(args, flag)
        if value is not None and not value > 0:
            raise CourseError(f"--{flag.replace('_', '-')}={value} is not allowed: a limit must "
                              "be positive")
    return Settings(profile=args.profile, isolation=args.isolation, seconds=args.time_limit,
                    memory=int(args.memory_limit * GIB), processes=args.process_limit)


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
    _add_limits(grader)
    checker = commands.add_parser("verify", help="grade the master copies (full marks "
                                  "expected) and untouched student copies (zero expected)")
    checker.add_argument("notebooks", nargs="*", help="stems, NN numbers or paths (default: all)")
    checker.add_argument("--profile", default="smoke", help="parameters of the runs (default "
                         "smoke)")
    _add_limits(checker)
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
            found = verify(notebooks, args.profile, settings=_settings(args))
            print(f"done in {time.time() - start:.0f} s")
            return 1 if found else 0
        else:
            grade(args.submissions, args.out, args.course, args.profile,
                  settings=_settings(args))
    except (CourseError, DriverError, SandboxError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
