"""Validation helpers: messages name the value and what is allowed."""

import pytest

from modlib.checks import (check_choice, check_float, check_float_list, check_int,
                           check_int_list)


def test_scalar_checks():
    assert check_int("k", 3, low=1) == 3
    with pytest.raises(ValueError, match=r"k=0 is not allowed: must be an integer in \[1, 49\]"):
        check_int("k", 0, low=1, high=49)
    with pytest.raises(TypeError, match="k=True must be an integer"):
        check_int("k", True)
    with pytest.raises(ValueError, match=r"p=0.0 is not allowed: must lie in \(0, 1\]"):
        check_float("p", 0.0, low=0.0, high=1.0, low_open=True)
    with pytest.raises(ValueError, match="must be a finite number"):
        check_float("lr", float("inf"))
    with pytest.raises(ValueError, match="arch='x' is not allowed: choose one of 'a', 'b'"):
        check_choice("arch", "x", ["a", "b"])


def test_list_checks():
    assert check_float_list("tau_sweep", [0.5, 1]) == [0.5, 1.0]
    with pytest.raises(ValueError, match=r"tau_sweep\[1\]=1.5 is not allowed"):
        check_float_list("tau_sweep", [0.5, 1.5], low=-1.0, high=1.0)
    with pytest.raises(ValueError, match="p_sweep=\\[\\] is not allowed"):
        check_float_list("p_sweep", [])
    with pytest.raises(ValueError, match=r"k_sweep\[0\]=0 is not allowed"):
        check_int_list("k_sweep", [0, 3], low=1)


def test_check_seed():
    from modlib.checks import check_seed
    assert check_seed("seed", 2**32 - 1) == 4294967295
    with pytest.raises(ValueError, match=r"seed=4294967296 is not allowed: must be an integer in "
                                         r"\[0, 4294967295\]"):
        check_seed("seed", 2**32)
    with pytest.raises(ValueError, match="seed=-1 is not allowed"):
        check_seed("seed", -1)
    with pytest.raises(TypeError, match="seed=1.5 must be an integer"):
        check_seed("seed", 1.5)
