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


def read_test_file(path: Path) -> list[dict]:
    """The test cases of one otter test file in OK format (``test = {...}``, a literal read
    without running the file): ``[{"code", "hidden", "points"}, ...]``.

    Raises:
        ValueError: the file holds no ``test`` dictionary of that shape.
    """
    import ast

    tree = ast.parse(Path(path).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == \
                ["test"]:
            test = ast.literal_eval(node.value)
            return [{"code": str(case["code"]), "hidden": bool(case.get("hidden", False)),
                     "points": float(case.get("points") or 0.0)}
                    for suite in test["suites"] for case in suite["cases"]]
    raise ValueError(f"{path} holds no `test = {{...}}` dictionary")


def run_case(name: str, code: str, env: dict) -> tuple[bool, str]:
    """Run one doctest-format test case in ``env`` as otter does: ``(True, "")`` when every
    example passes, else ``(False, the doctest report)``."""
    import contextlib
    import doctest
    import io

    examples = [e for e in doctest.DocTestParser().parse(code, name)
                if isinstance(e, doctest.Example)]
    test = doctest.DocTest(examples, env, name, None, None, code)
    runner = doctest.DocTestRunner(verbose=False)
    report = io.StringIO()
    with contextlib.redirect_stdout(report), contextlib.redirect_stderr(report):
        runner.run(test, clear_globs=False, out=report.write)
    return runner.failures == 0, report.getvalue()


def check(tests_dir: str, variables: str) -> int:
    """Step 2 (module docstring): prints ``{"exercises": {name: [score, possible, failures]},
    "skipped": {variable: reason}}`` as the last line of standard output. Each test file runs
    over its own copy of the variables; a failed case scores 0 and its report's last line is
    the failure (``"public: NameError: name 'q' is not defined"``)."""
    from .course_vars import load

    env, skipped = load(variables)
    results = {}
    for path in sorted(Path(tests_dir).glob("*.py")):
        score = possible = 0.0
        reasons = []
        scope = dict(env)
        for i, case in enumerate(read_test_file(path)):
            passed, report = run_case(f"{path.stem}_{i}", case["code"], scope)
            possible += case["points"]
            score += case["points"] if passed else 0.0
            if not passed:
                lines = [line.strip() for line in report.splitlines() if line.strip()]
                reasons.append(f"{'hidden' if case['hidden'] else 'public'}: "
                               f"{lines[-1][:200] if lines else 'failed'}")
        results[path.stem] = [score, possible, " | ".join(reasons)]
    print(json.dumps({"exercises": results, "skipped": skipped}))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["execute"] and len(argv) == 4:
        return execute(argv[1], argv[2], json.loads(argv[3]))
    if argv[:1] == ["check"] and len(argv) == 3:
        return check(argv[1], argv[2])
    if argv == ["probe"]:   # the grader's trial: can a sandboxed Python run a kernel client?
        import subprocess

        import nbclient  # noqa: F401

        from . import course_vars  # noqa: F401

        subprocess.run([sys.executable, "-c", "pass"], check=True)   # as a kernel is started

        print("ok")
        return 0
    print("usage: course_worker execute NOTEBOOK KERNEL NAMES_JSON | check TESTS_DIR VARIABLES",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
