"""Notebooks 07 and 09 refuse bad parameters in their validation cell, before any work, with
the bad value and what is allowed in the message.

The validation cell runs in this process (the notebook's parameters cell, the smoke profile's
values and the bad value on top, as papermill injects them, then the validation cell), so these
checks start no kernel; one case goes through the driver to show the same message reaches the
user with the cell that failed."""

import os
import subprocess
import sys

import nbformat
import pytest

from modlib import paths
from modlib.companion import run

CASES = [
    ("07_training_dynamics", "epoch_list", "[0, 7]",
     "epoch_list[1]=7 is not allowed: must be an integer in [0, 2]"),
    ("07_training_dynamics", "epoch_list", "[0, 2]",
     "epoch_list=[0, 2] is not allowed: give at least 3 distinct epochs in [0, 2]"),
    ("09_adversarial_inputs", "eps_list", "[0.1, 1.5]",
     "eps_list[1]=1.5 is not allowed: must lie in (0, 1]"),
    ("09_adversarial_inputs", "attack_names", "['fgsm', 'cw']",
     "attack='cw' is not allowed: choose one of 'fgsm', 'pgd'"),
]


def validation_error(notebook: str, name: str, value: str) -> str:
    """The message of the error that the notebook's validation cell raises for ``-p name value``
    under the smoke profile (the test fails if it raises none)."""
    path = run.resolve([notebook])[0]
    parameters = run.plan([path], "smoke", [(name, value)])[0][1]
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    namespace = {}
    exec(compile(code[0].source, f"{notebook}[parameters]", "exec"), namespace)
    namespace.update(parameters)
    with pytest.raises(ValueError) as caught:
        exec(compile(code[1].source, f"{notebook}[validation]", "exec"), namespace)
    return str(caught.value)


@pytest.mark.parametrize("notebook, name, value, message", CASES)
def test_bad_value_fails_in_the_validation_cell(notebook, name, value, message, monkeypatch):
    monkeypatch.setenv("MODLIB_HEADLESS", "1")
    assert message in validation_error(notebook, name, value)


@pytest.mark.notebooks
def test_the_driver_reports_the_validation_cell():
    notebook, name, value, message = CASES[0]
    result = subprocess.run([sys.executable, "-m", "modlib.companion.run", notebook, "--profile",
                             "smoke", "-p", name, value], capture_output=True, text=True,
                            timeout=300, env=os.environ.copy(), cwd=paths.root())
    assert result.returncode == 1
    assert f"{notebook} failed in cell 3" in result.stderr, result.stderr
    assert message in result.stderr, result.stderr
