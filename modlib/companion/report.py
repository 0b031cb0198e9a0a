"""The README's numbers and the claims ledger, generated from the committed results of the
default profile.

The README quotes numbers only from ``results/*.json`` (written by the notebooks when run with the
default profile, and committed). :func:`render` turns them into a Markdown block, and
``python -m modlib.companion.report`` (run by ``make figures``) writes that block between the
markers ``<!-- results:start -->`` and ``<!-- results:end -->`` of README.md. A test checks that
the block in README.md is what the committed results give, so the README cannot drift from the
run.

The claims ledger: every notebook writes the claims it tests under ``"claims"`` of its metrics
(rows made by ``modlib.stats.claim``). :func:`collect_claims` merges the rows of all
``results/NN_*.json`` in notebook order, :func:`write_claims` writes them to
``results/claims.json`` as ``{"claims": [...]}``, and :func:`render_claims` makes the table that
the same command writes between ``<!-- claims:start -->`` and ``<!-- claims:end -->`` of
README.md; the book shows it as a page (:func:`claims_page`). How the rules are chosen:
``docs/claims.md``.
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path

from .. import models, paths, store, stats

START, END = "<!-- results:start -->", "<!-- results:end -->"
CLAIMS_START, CLAIMS_END = "<!-- claims:start -->", "<!-- claims:end -->"
CLAIM_KEYS = ("id", "paper", "claim", "notebook", "statistic", "effect", "ci_low", "ci_high",
              "n_seeds", "verdict", "rule")
CLAIMS_FILE = "claims.json"


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
        # notebook 05's numbers are means over its training seeds: take its accuracy too, so a
        # row never mixes one network's accuracy with the curves of several
        accuracy = curve_models.get(arch, {}).get(
            "test_accuracy", trained_models.get(arch, {}).get("test_accuracy"))
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
        seeds = curves.get("seeds") or []
        if len(seeds) > 1:
            notes.append(f"Accuracy and Q are means over {len(seeds)} independently trained "
                         "networks per architecture (one per training seed).")
    profile = (curves or trained).get("profile", "default")
    notes.append(f"Generated from `results/` ({profile} profile) by "
                 "`python -m modlib.companion.report`.")
    return "\n".join(lines) + "\n\n" + " ".join(notes)


# --------------------------------------------------------------------------------------------
# The claims ledger


def collect_claims(metrics_dir: Path | None = None) -> list[dict]:
    """The ``"claims"`` rows of every ``NN_*.json`` in ``metrics_dir`` (default ``results/``),
    in notebook order and, within a notebook, in the order it wrote them.

    A ``"claims"`` value that is not a list (results written before the ledger existed) is
    skipped with a warning.

    Raises:
        ValueError: a row that is not a ledger row (missing or extra keys, a verdict other than
            supported / refuted / inconclusive) or an id used twice, naming the file and the row.
    """
    folder = Path(metrics_dir) if metrics_dir is not None else paths.metrics_dir()
    rows, seen = [], {}
    for path in sorted(folder.glob("[0-9][0-9]_*.json")) if folder.is_dir() else []:
        found = json.loads(path.read_text()).get("claims", [])
        if not isinstance(found, list):      # results written before the ledger existed
            warnings.warn(f"{path.name}: 'claims' is a {type(found).__name__}, not a list of "
                          "ledger rows (modlib.stats.claim): skipped; rerun the notebook",
                          stacklevel=2)
            continue
        for i, row in enumerate(found):
            where = f"{path.name}, claims[{i}]"
            if not isinstance(row, dict) or set(row) != set(CLAIM_KEYS):
                found = sorted(row) if isinstance(row, dict) else type(row).__name__
                raise ValueError(f"{where} has keys {found}: a ledger row has exactly "
                                 f"{list(CLAIM_KEYS)} (make it with modlib.stats.claim)")
            if row["verdict"] not in stats.VERDICTS:
                raise ValueError(f"{where}: verdict={row['verdict']!r} is not allowed: choose "
                                 f"one of {stats.VERDICTS}")
            if row["id"] in seen:
                raise ValueError(f"{where}: id={row['id']!r} is already used in {seen[row['id']]}")
            seen[row["id"]] = where
            rows.append({key: row[key] for key in CLAIM_KEYS})
    return rows


def write_claims(metrics_dir: Path | None = None) -> bool:
    """Write ``claims.json`` (``{"claims": [...]}``, :func:`collect_claims`) into ``metrics_dir``
    atomically; return whether it changed."""
    folder = Path(metrics_dir) if metrics_dir is not None else paths.metrics_dir()
    path = folder / CLAIMS_FILE
    old = path.read_text() if path.is_file() else None
    store.write_json(path, {"claims": collect_claims(folder)})
    return path.read_text() != old


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _signed(value) -> str:
    return "–" if value is None else f"{value:+.3g}"


def render_claims(rows: list[dict]) -> str:
    """The ledger as a Markdown table (id, paper, claim, notebook, statistic, effect, 95 % CI, n,
    verdict, rule), or a line saying that no claim has been tested yet."""
    if not rows:
        return "*No claims tested yet: run `make figures`.*"
    lines = ["| id | paper | claim | notebook | statistic | effect | 95 % CI | n | verdict | "
             "rule |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        ci = ("–" if row["ci_low"] is None or row["ci_high"] is None
              else f"{_signed(row['ci_low'])} to {_signed(row['ci_high'])}")
        lines.append("| " + " | ".join(_cell(v) for v in (
            row["id"], row["paper"], row["claim"], row["notebook"], row["statistic"],
            _signed(row["effect"]), ci, row["n_seeds"], f"**{row['verdict']}**",
            row["rule"])) + " |")
    counts = {v: sum(r["verdict"] == v for r in rows) for v in stats.VERDICTS}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items())
    return "\n".join(lines) + (f"\n\n{len(rows)} claims: {summary}. Generated from `results/` "
                               "by `python -m modlib.companion.report`.")


def claims_page(metrics_dir: Path | None = None) -> str:
    """The book's page of the ledger (Markdown): a title, how to read it, the table."""
    return ("# Claims ledger\n\nEvery claim of the papers that the notebooks test, with its "
            "effect, its 95 % confidence interval over independently trained networks (seeds; the "
            "members of a population for the weight-graph rows) and the "
            "verdict of a rule stated before the data ([how the rules were "
            "chosen](docs/claims.md)).\n\n"
            + render_claims(collect_claims(metrics_dir)) + "\n")


# --------------------------------------------------------------------------------------------
# The README's blocks


def readme_block(text: str, start: str = START, end: str = END) -> str:
    """The current content between the markers ``start`` and ``end`` of ``text`` (a README).

    Raises:
        ValueError: the markers are missing.
    """
    match = re.search(re.escape(start) + r"\n(.*?)\n" + re.escape(end), text, flags=re.S)
    if not match:
        raise ValueError(f"README.md has no {start} ... {end} block")
    return match.group(1)


def write_readme() -> bool:
    """Rewrite the README's results and claims blocks from ``results/``; return whether it
    changed."""
    readme = paths.root() / "README.md"
    text = original = readme.read_text()
    for (start, end), new in [((START, END), render()),
                              ((CLAIMS_START, CLAIMS_END), render_claims(collect_claims()))]:
        old = readme_block(text, start, end)
        text = text.replace(f"{start}\n{old}\n{end}", f"{start}\n{new}\n{end}")
    if text == original:
        return False
    store.write_bytes(readme, text.encode())
    return True


if __name__ == "__main__":
    claims_changed = write_claims()
    print(f"{paths.metrics_dir().name}/{CLAIMS_FILE} " + ("updated" if claims_changed
                                                          else "already up to date"))
    changed = write_readme()
    print("README.md results and claims blocks " + ("updated" if changed
                                                    else "already up to date"))
    sys.exit(0)
