"""Progress feedback for long work: one helper, right in Jupyter, in a terminal and headless.

In Jupyter and in a terminal, :func:`bar` is ``tqdm.auto.tqdm`` (a widget or a text bar). Under the
papermill driver (``python -m modlib.companion.run``, which sets ``MODLIB_HEADLESS=1``) a bar inside the
notebook would be frozen at its first frame in the executed copy, so the bar is drawn instead on
the kernel's own standard error, which is the driver's terminal: the user watches training while
the executed notebook stays clean.
"""

from __future__ import annotations

import os
import sys


def headless() -> bool:
    """Whether the code runs under the papermill driver (``MODLIB_HEADLESS=1``)."""
    return os.environ.get("MODLIB_HEADLESS") == "1"


def bar(iterable=None, **kwargs):
    """A tqdm progress bar (same arguments as ``tqdm.tqdm``), shown where the user can see it.

    Headless, the bar goes to the process's original standard error (the driver's terminal) and
    redraws at most every few seconds; ``disable=True`` still hides it.
    """
    if headless():
        from tqdm import tqdm

        kwargs.setdefault("file", sys.__stderr__)
        kwargs.setdefault("mininterval", 2.0)
        kwargs.setdefault("dynamic_ncols", True)
        kwargs.setdefault("leave", False)
        return tqdm(iterable, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
