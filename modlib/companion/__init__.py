"""The companion's machinery: what turns the notebooks into a reproducible, rendered, taught
companion.

``run`` (the papermill driver), ``report`` (the README's generated blocks and the claims ledger
from ``results/``), ``book`` (the Jupyter Book) and ``course`` (student copies and grading).

It imports :mod:`modlib` (the science); nothing in :mod:`modlib` outside this package imports it,
so a reader looking for "where is Q computed" finds only the science one folder up. Why a
subpackage and not a sibling: ``docs/README.md``.
"""
