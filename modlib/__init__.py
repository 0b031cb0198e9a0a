"""modlib: the helper package of the layer-wise modularity companion.

One module per concept (the table in README.md, section "modlib"); importing ``modlib`` itself
loads nothing, seeds nothing and changes no settings. The machinery (driver, report, book,
course) lives in :mod:`modlib.companion`, which imports these modules and is never imported by them.
"""
