"""Validation of user input, shared by every module and by the notebooks' parameter cells.

Each check raises ``ValueError`` (or ``TypeError`` for a value of the wrong kind) naming the
parameter, the bad value and what is allowed, e.g. ``k=0 is not allowed: must be an integer >= 1``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable


def check_int(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """``value`` as ``int`` if it is an integer (not a bool) in ``[low, high]``.

    Raises:
        TypeError: not an integer.
        ValueError: outside the bounds.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}={value!r} must be an integer, got {type(value).__name__}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        bound = (f"in [{low}, {high}]" if low is not None and high is not None
                 else f">= {low}" if low is not None else f"<= {high}")
        raise ValueError(f"{name}={value!r} is not allowed: must be an integer {bound}")
    return value


def check_float(name: str, value, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as ``float`` if it is finite and in the interval (``*_open``: exclusive bound).

    Raises:
        TypeError: not a real number.
        ValueError: NaN, infinite or outside the interval.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}={value!r} is not allowed: must be a finite number")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ValueError(f"{name}={value!r} is not allowed: must lie in {left}{lo}, {hi}{right}")
    return value


def check_choice(name: str, value, allowed: Iterable):
    """``value`` if it is one of ``allowed``; else ``ValueError`` listing them."""
    allowed = list(allowed)
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name}={value!r} is not allowed: choose one of {options}")
    return value


SEED_MAX = 2**32 - 1


def check_seed(name: str, value) -> int:
    """``value`` as ``int`` if every generator accepts it as a seed, ``[0, 2**32 - 1]`` (NumPy's
    legacy ``np.random.seed`` refuses larger ones).

    Raises:
        TypeError: not an integer.
        ValueError: outside ``[0, 2**32 - 1]``.
    """
    return check_int(name, value, low=0, high=SEED_MAX)


def check_int_list(name: str, values, low: int | None = None, high: int | None = None) -> list[int]:
    """A non-empty list of integers, each in ``[low, high]``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name}={values!r} must be a list of integers")
    values = list(values)
    if not values:
        raise ValueError(f"{name}=[] is not allowed: give at least one value")
    return [check_int(f"{name}[{i}]", v, low, high) for i, v in enumerate(values)]


def check_float_list(name: str, values, **bounds) -> list[float]:
    """A non-empty list of numbers, each passing :func:`check_float` with ``bounds``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name}={values!r} must be a list of numbers")
    values = list(values)
    if not values:
        raise ValueError(f"{name}=[] is not allowed: give at least one value")
    return [check_float(f"{name}[{i}]", v, **bounds) for i, v in enumerate(values)]
