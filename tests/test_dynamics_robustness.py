"""Notebooks 07 and 09 refuse bad parameters in their validation cell, before any work, with
the bad value and what is allowed in the message."""

import os
import subprocess
import sys

import pytest

from modlib import paths


def drive(*args):
    return subprocess.run([sys.executable, "-m", "modlib.companion.run", *args], capture_output=True,
                          text=True, timeout=300, env=os.environ.copy(), cwd=paths.root())


@pytest.mark.notebooks
@pytest.mark.parametrize("notebook, name, value, message", [
    ("07_training_dynamics", "epoch_list", "[0, 7]",
     "epoch_list[1]=7 is not allowed: must be an integer in [0, 2]"),
    ("07_training_dynamics", "epoch_list", "[0, 2]",
     "epoch_list=[0, 2] is not allowed: give at least 3 distinct epochs in [0, 2]"),
    ("09_adversarial_inputs", "eps_list", "[0.1, 1.5]",
     "eps_list[1]=1.5 is not allowed: must lie in (0, 1]"),
    ("09_adversarial_inputs", "attack_names", "['fgsm', 'cw']",
     "attack='cw' is not allowed: choose one of 'fgsm', 'pgd'"),
])
def test_bad_value_fails_in_the_validation_cell(notebook, name, value, message):
    result = drive(notebook, "--profile", "smoke", "-p", name, value)
    assert result.returncode == 1
    assert f"{notebook} failed in cell 3" in result.stderr, result.stderr
    assert message in result.stderr, result.stderr
