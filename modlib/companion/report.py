"""The README's numbers, generated from the committed results of the default profile.

The README quotes numbers only from ``results/*.json`` (written by the notebooks when run with the
default profile, and committed). :func:`render` turns them into a Markdown block, and
``python -m modlib.companion.report`` (run by ``make figures``) writes that block between the markers
``<!-- results:start -->`` and ``<!-- results:end -->`` of README.md. A test checks that the block
in README.md is what the committed results give, so the README cannot drift from the run.
"""

from __future__ import annotations

import json
import re
import sys

from .. import models, paths, store

START, END = "<!-- results:start -->", "<!-- results:end -->"


def _load(stem: str) -> dict | None:
    path = paths.metrics_dir() / f"{stem}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _num(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def render() -> str:
    """The Markdown block of headline numbers (without the markers)."""
    trained, curves = _load("01_train_models"), _load("05_modularity_curves")
    if trained is None and curves is None:
        return "*No results yet: run `make figures`.*"
    trained_models = dict((trained or {}).get("models", {}))
    curve_models = (curves or {}).get("models", {})
    lines = ["| model | test accuracy | Q, first probe point | Q, last probe point | "
             "probe points |", "|---|---|---|---|---|"]
    order = {name: i for i, name in enumerate(models.ARCHITECTURES)}
    for arch in sorted(dict.fromkeys([*trained_models, *curve_models]),
                       key=lambda a: order.get(a, len(order))):
        accuracy = trained_models.get(arch, {}).get(
            "test_accuracy", curve_models.get(arch, {}).get("test_accuracy"))
        q = curve_models.get(arch, {}).get("Q_mean") or []
        lines.append(f"| {arch} | {_pct(accuracy)} | {_num(q[0] if q else None)} | "
                     f"{_num(q[-1] if q else None)} | {len(q) or '–'} |")
    notes = []
    if curves:
        pixels = curves.get("Q_input_pixels", {}).get("mean")
        if pixels is not None:
            notes.append(f"Q of the raw input pixels: {pixels:.3f}.")
        notes.append(f"kNN graphs with k = {curves.get('k')}, N = {curves.get('graph_size')} "
                     f"test images, mean over {curves.get('n_batches')} class-balanced batches.")
    profile = (curves or trained).get("profile", "default")
    notes.append(f"Generated from `results/` ({profile} profile) by `python -m modlib.companion.report`.")
    return "\n".join(lines) + "\n\n" + " ".join(notes)


def readme_block(text: str) -> str:
    """The current content between the markers of ``text`` (a README).

    Raises:
        ValueError: the markers are missing.
    """
    match = re.search(re.escape(START) + r"\n(.*?)\n" + re.escape(END), text, flags=re.S)
    if not match:
        raise ValueError(f"README.md has no {START} ... {END} block")
    return match.group(1)


def write_readme() -> bool:
    """Rewrite the README's results block from ``results/``; return whether it changed."""
    readme = paths.root() / "README.md"
    text = readme.read_text()
    old = readme_block(text)
    new = render()
    if old == new:
        return False
    text = text.replace(f"{START}\n{old}\n{END}", f"{START}\n{new}\n{END}")
    store.write_bytes(readme, text.encode())
    return True


if __name__ == "__main__":
    changed = write_readme()
    print("README.md results block " + ("updated" if changed else "already up to date"))
    sys.exit(0)
