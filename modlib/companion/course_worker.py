"""What runs inside the grading sandboxes: a submission's cells, then, separately, its checks.

The grader (:mod:`modlib.companion.course_grading`) starts this module twice per submission,
each time in a fresh sandbox (:mod:`modlib.companion.sandbox`) with the working folder as the
current directory:

1. ``execute NOTEBOOK KERNEL NAMES_JSON``: runs the notebook's cells top to bottom in a fresh
   kernel (a failing cell does not stop the run), then, in the same kernel, pickles the variables
   the checks read (:func:`modlib.companion.course_vars.dump`) to ``variables.pkl``; writes
   ``executed.ipynb`` and ``status.json`` (whether the kernel died). No check is in the sandbox.
2. ``check TESTS_DIR VARIABLES``: a fresh interpreter, started after every process of step 1 has
   ended, loads the variables as data only (:func:`modlib.companion.course_vars.load`), runs each
   otter test file of ``TESTS_DIR`` over them and prints the scores as one JSON line.

The submission's code never runs in step 2's interpreter, so it cannot patch ``assert``,
otter or the checks there, and the checks never exist where its code runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DUMP_CELL = ("from modlib.companion.course_vars import dump as __grader_dump\n"
             "__grader_dump(globals(), {names!r}, 'variables.pkl')")


def execute(notebook: str, kernel: str, names: list[str]) -> int:
    """Step 1 (module docstring). Returns the exit status (0 also when cells raised)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    nb = nbformat.read(notebook, as_version=4)
    count = len(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell(DUMP_CELL.format(names=sorted(names))))
    client = NotebookClient(nb, kernel_name=kernel or "python3", timeout=None,
                            allow_errors=True, record_timing=False,
                            resources={"metadata": {"path": str(Path.cwd())}})
    status = {"kernel_died": False, "message": ""}
    try:
        client.execute()
    except DeadKernelError as err:
        status = {"kernel_died": True, "message": str(err)[:300]}
    except Exception as err:   # noqa: BLE001 - report any failure of the run as the reason
        status = {"kernel_died": True, "message": f"{type(err).__name__}: {str(err)[:300]}"}
    dump_cell = nb.cells[count] if len(nb.cells) > count else None
    nb.cells = nb.cells[:count]
    if dump_cell is not None and not status["kernel_died"]:
        errors = [o for o in dump_cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            status["message"] = f"saving the variables failed: {errors[0].get('ename')}"
    nbformat.write(nb, "executed.ipynb")
    Path("status.json").write_text(json.dumps(status))
    return 0


def check(tests_dir: str, variables: str) -> int:
    """Step 2 (module docstring): prints ``{"exercises": {name: [score, possible, failures]},
    "skipped": {variable: reason}}`` as the last line of standard output."""
    from otter.test_files import OKTestFile

    from .course_vars import load

    env, skipped = load(variables)
    results = {}
    for path in sorted(Path(tests_dir).glob("*.py")):
        test_file = OKTestFile.from_file(str(path))
        test_file.run(dict(env))
        results[path.stem] = [float(test_file.score), float(test_file.possible),
                              failures(test_file)]
    print(json.dumps({"exercises": results, "skipped": skipped}))
    return 0


def failures(test_file) -> str:
    """The last line of each failed test case's message (``"public: NameError: name 'q' is not
    defined"``), joined with `` | ``."""
    reasons = []
    for case in test_file.test_case_results:
        if not case.passed:
            lines = [line.strip() for line in (case.message or "").splitlines() if line.strip()]
            kind = "hidden" if case.test_case.hidden else "public"
            reasons.append(f"{kind}: {lines[-1][:200] if lines else 'failed'}")
    return " | ".join(reasons)


def main(argv: list[str]) -> int:
    if argv[:1] == ["execute"] and len(argv) == 4:
        return execute(argv[1], argv[2], json.loads(argv[3]))
    if argv[:1] == ["check"] and len(argv) == 3:
        return check(argv[1], argv[2])
    print("usage: course_worker execute NOTEBOOK KERNEL NAMES_JSON | check TESTS_DIR VARIABLES",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
