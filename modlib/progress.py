"""Progress bars: ``tqdm.auto`` in Jupyter and a terminal; under the papermill driver
(``MODLIB_HEADLESS=1``) on the kernel's own standard error, the driver's terminal, so that the
executed notebook stays clean.
"""

from __future__ import annotations

import os
import sys


def headless() -> bool:
    """Whether the code runs under the papermill driver (``MODLIB_HEADLESS=1``)."""
    return os.environ.get("MODLIB_HEADLESS") == "1"


def bar(iterable=None, **kwargs):
    """A tqdm progress bar (``tqdm.tqdm``'s arguments); headless, on the original standard error
    (the driver's terminal), redrawn at most every 2 s."""
    if not headless():
        from tqdm.auto import tqdm

        return tqdm(iterable, **kwargs)
    from tqdm import tqdm

    defaults = {"file": sys.__stderr__, "mininterval": 2.0, "dynamic_ncols": True, "leave": False}
    return tqdm(iterable, **(defaults | kwargs))
