"""The book's staging without a browser: notebook order, table of contents, configuration, link
rewriting, math detection, and a whole staging of a small fake repository. The last test checks a
built book (when there is one) for assets that would come from the internet."""

from __future__ import annotations

import importlib
import inspect
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from modlib import paths
from modlib.companion import book

yaml = pytest.importorskip("yaml")


def _touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _notebook(path: Path, cells: list, failed: bool = False) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["papermill"] = {"exception": True if failed else None}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


# --------------------------------------------------------------------------------------------
# notebooks and the table of contents


def test_notebook_files_numeric_order_and_only_numbered(tmp_path):
    for name in ["10_late.ipynb", "02_b.ipynb", "01_a.ipynb", "notes.ipynb", "1_bad.ipynb",
                 "03_c.txt", "04_d.ipynb.bak"]:
        _touch(tmp_path / name)
    (tmp_path / "05_folder.ipynb").mkdir()
    assert [p.name for p in book.notebook_files(tmp_path)] == \
        ["01_a.ipynb", "02_b.ipynb", "10_late.ipynb"]
    with pytest.raises(FileNotFoundError, match="missing"):
        book.notebook_files(tmp_path / "missing")


def test_toc_yaml_parts_in_order_and_valid_for_jupyter_book():
    plan = book.TocPlan(root="index.md", notes=["docs/README.md", "docs/references.md"],
                        notebooks=["notebooks/01_a.ipynb", "notebooks/10_b.ipynb"],
                        appendix=["data/README.md"])
    toc = yaml.safe_load(book.toc_yaml(plan))
    assert toc["format"] == "jb-book" and toc["root"] == "index"
    assert [p["caption"] for p in toc["parts"]] == ["Notebooks", "Method notes", "Appendix"]
    assert [c["file"] for c in toc["parts"][0]["chapters"]] == ["notebooks/01_a",
                                                               "notebooks/10_b"]
    assert [c["file"] for c in toc["parts"][1]["chapters"]] == ["docs/README",
                                                               "docs/references"]
    # empty parts are left out
    toc = yaml.safe_load(book.toc_yaml(book.TocPlan(root="index.md",
                                                    notebooks=["notebooks/01_a.ipynb"])))
    assert [p["caption"] for p in toc["parts"]] == ["Notebooks"]
    parsing = pytest.importorskip("sphinx_external_toc.parsing")
    site = parsing.parse_toc_data(yaml.safe_load(book.toc_yaml(plan)))
    assert site.root.docname == "index"
    assert "notebooks/10_b" in site and "data/README" in site


def test_config_yaml_offline_and_no_execution():
    cfg = yaml.safe_load(book.config_yaml("Title: with colon", profile="smoke"))
    assert cfg["title"] == "Title: with colon"
    assert cfg["execute"]["execute_notebooks"] == "off"
    sphinx = cfg["sphinx"]["config"]
    assert sphinx["mathjax_path"] == "mathjax/tex-mml-chtml.js"
    assert sphinx["html_static_path"] == ["_vendor"]
    assert "sphinx_thebe" not in sphinx["extensions"]
    assert sphinx["nb_ipywidgets_js"] == {} and sphinx["nb_output_stderr"] == "remove"
    assert "dollarmath" in cfg["parse"]["myst_enable_extensions"]
    assert "repository" not in cfg and not re.search(r"https?://(?!www\.w3\.org)",
                                                     json.dumps(cfg))
    cfg = yaml.safe_load(book.config_yaml("T", repo_url="https://github.com/o/r", branch="dev"))
    assert cfg["repository"] == {"url": "https://github.com/o/r", "branch": "dev",
                                 "path_to_book": ""}
    assert cfg["html"]["use_repository_button"] is True


@pytest.mark.parametrize("remote, url", [
    ("git@github.com:owner/repo.git", "https://github.com/owner/repo"),
    ("https://github.com/owner/repo.git\n", "https://github.com/owner/repo"),
    ("https://user:token@gitlab.com/g/sub/repo", "https://gitlab.com/g/sub/repo"),
    ("ssh://git@github.com/owner/repo.git", "https://github.com/owner/repo"),
    ("/srv/git/repo.git", None),
])
def test_repo_web_url(remote, url):
    assert book.repo_web_url(remote) == url


# --------------------------------------------------------------------------------------------
# the API reference


def test_api_modules_are_the_science_modules_of_this_repository():
    modules = book.api_modules(paths.root())
    expected = sorted(f"modlib.{p.stem}" for p in (paths.root() / "modlib").glob("*.py")
                      if p.name != "__init__.py")
    assert modules == expected
    assert {"modlib.graphs", "modlib.modularity", "modlib.features"} <= set(modules)
    assert not [m for m in modules if "companion" in m or m.endswith("__init__")]
    assert book.api_modules(paths.root() / "no-such-folder") == []


def test_api_pages_are_autodoc_directives():
    page = book.api_page("modlib.graphs")
    assert page.startswith("# `modlib.graphs`\n")
    assert "```{eval-rst}\n.. automodule:: modlib.graphs\n   :members:\n" in page
    assert book.api_path("modlib.graphs") == "api/modlib.graphs.md"
    index = book.api_index(["modlib.cka", "modlib.graphs"])
    assert ".. autosummary::\n\n   modlib.cka\n   modlib.graphs\n```" in index
    cfg = yaml.safe_load(book.config_yaml("T"))["sphinx"]["config"]
    assert {"sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.napoleon"} <= \
        set(cfg["extensions"])
    assert "sphinx.ext.intersphinx" not in cfg["extensions"]   # nothing fetched


@pytest.mark.parametrize("target, ignored", [
    ("torch.Tensor", True), ("pandas.DataFrame", True), ("torch.nn.modules.module.Module", True),
    ("modlib.graphs.Missing", False), ("Tensor", False), ("DataFrame, one row", False)])
def test_only_other_packages_types_may_lack_a_target(target, ignored):
    # a broken reference inside modlib must still fail the strict build
    patterns = [p for kind, p in book.API_SPHINX_CONFIG["nitpick_ignore_regex"]
                if kind == "py:class"]
    assert any(re.fullmatch(p, target) for p in patterns) is ignored


def _public_docstrings():
    """``(qualified name, kind, docstring)`` of the public functions, classes and methods that
    the API reference shows (autodoc's ``:members:``: defined in the module, with a docstring)."""
    for module_name in book.api_modules(paths.root()):
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
                continue
            if inspect.isfunction(obj) and obj.__doc__:
                yield f"{module_name}.{name}", "function", obj.__doc__
            elif inspect.isclass(obj):
                if obj.__doc__:
                    yield f"{module_name}.{name}", "class", obj.__doc__
                for member_name, member in vars(obj).items():
                    func = getattr(member, "__func__", getattr(member, "fget", member))
                    if not member_name.startswith("_") and inspect.isfunction(func) \
                            and func.__doc__:
                        yield f"{module_name}.{name}.{member_name}", "method", func.__doc__


def test_docstring_sections_read_as_the_api_reference_reads_them():
    # napoleon turns "Raises:" entries into exception references: a continuation line that is
    # not indented becomes an "exception" named by its text, and the strict book build fails on
    # it. This finds them without building the book.
    napoleon = pytest.importorskip("sphinx.ext.napoleon")
    config = napoleon.Config(**{key: value for key, value in book.API_SPHINX_CONFIG.items()
                                if key.startswith("napoleon_")})
    checked, bad = 0, []
    for qualname, kind, doc in _public_docstrings():
        text = str(napoleon.GoogleDocstring(inspect.cleandoc(doc), config, what=kind))
        checked += 1
        for exception in re.findall(r"^:raises (.*?):", text, re.M):
            if not re.fullmatch(r"[A-Za-z_][\w.]*(\s*,\s*[A-Za-z_][\w.]*)*", exception):
                bad.append(f"{qualname}: Raises entry {exception!r} (indent continuation "
                           "lines; one exception per entry)")
    assert checked > 100
    assert not bad, "\n".join(bad)


# --------------------------------------------------------------------------------------------
# links


def test_resolve_target():
    assert book.resolve_target("docs/README.md", "training.md") == ("docs/training.md", "")
    assert book.resolve_target("docs/README.md", "../figures/a.png#x") == ("figures/a.png", "x")
    assert book.resolve_target("README.md", "docs/") == ("docs", "")
    assert book.resolve_target("notebooks/05.ipynb", "../docs/a.md?v=1#q") == ("docs/a.md", "q")
    for external in ["https://arxiv.org/abs/2111.12485", "mailto:a@b.c", "#section",
                     "//cdn.example/x.js", "../../outside.md", ""]:
        assert book.resolve_target("docs/README.md", external) is None, external


def test_markdown_links_skip_fenced_code():
    text = ("[a](a.md) and ![img](figures/x.png \"title\")\n```bash\n[no](code.md)\n```\n"
            "~~~\n[no](tilde.md)\n~~~\n[b](<with space.md>)\n")
    assert book.markdown_links(text) == ["a.md", "figures/x.png", "with space.md"]


def test_rewrite_links_keeps_drops_and_redirects():
    text = ("See [05](notebooks/05_curves.ipynb#the-method), [07](notebooks/07_new.ipynb), "
            "![curves](figures/05.png), ![gone](figures/none.png), [docs](docs/README.md), "
            "[paper](https://arxiv.org/abs/2111.12485), [top](#two-commands) and "
            "[readme](README.md).\n```\n[code](notebooks/07_new.ipynb)\n```\n")
    targets = {"notebooks/05_curves.ipynb": "notebooks/05_curves.ipynb",
               "figures/05.png": "figures/05.png", "docs/README.md": "docs/README.md",
               "README.md": "index.md",
               "notebooks/07_new.ipynb": "https://example.org/r/blob/main/notebooks/07_new.ipynb"}
    new, problems = book.rewrite_links(text, "README.md", targets.get)
    assert "[05](notebooks/05_curves.ipynb#the-method)" in new
    assert "[07](https://example.org/r/blob/main/notebooks/07_new.ipynb)" in new
    assert "![curves](figures/05.png)" in new
    assert "*gone*" in new and "none.png" not in new
    assert "[paper](https://arxiv.org/abs/2111.12485)" in new and "[top](#two-commands)" in new
    assert "[readme](index.md)" in new
    assert "```\n[code](notebooks/07_new.ipynb)\n```" in new   # fenced code untouched
    assert problems == ["README.md: link to figures/none.png has no target in the book"]


def test_rewrite_links_relative_to_the_page():
    resolve = {"docs/a.md": "docs/a.md", "figures/x.png": "figures/x.png",
               "README.md": "index.md"}.get
    new, problems = book.rewrite_links(
        "[a](a.md) ![x](../figures/x.png) [home](../README.md) [b](b.md#part)",
        "docs/README.md", resolve)
    assert new == "[a](a.md) ![x](../figures/x.png) [home](../index.md) b"
    assert problems == ["docs/README.md: link to b.md#part (docs/b.md) has no target in the book"]


@pytest.mark.parametrize("text, expected", [
    ("modularity $Q$ of the graph", True),
    ("$$Q = \\frac{1}{2m}\\sum_{ij} A_{ij}$$", True),
    ("inline \\(x\\)", True),
    ("\\begin{align} a &= b \\end{align}", True),
    ("it costs $5 and $6", False),
    ("code `$x$` only", False),
    ("```python\ny = '$x$'\n```", False),
    ("plain prose", False),
])
def test_has_math(text, expected):
    assert book.has_math(text) is expected


def test_notebook_has_math_in_cells_and_markdown_outputs():
    plain = {"cells": [{"cell_type": "markdown", "source": "no math"},
                       {"cell_type": "code", "source": "x = '$a$'", "outputs": []}]}
    assert not book.notebook_has_math(plain)
    output = {"output_type": "display_data", "data": {"text/markdown": ["Q = $0.61$"]}}
    assert book.notebook_has_math({"cells": [{"cell_type": "code", "source": "",
                                              "outputs": [output]}]})
    assert book.notebook_has_math({"cells": [{"cell_type": "markdown", "source": ["$k$"]}]})


# --------------------------------------------------------------------------------------------
# a whole staging of a small repository


@pytest.fixture
def fake_repo(tmp_path, monkeypatch):
    repo, build = tmp_path / "repo", tmp_path / "build"
    monkeypatch.setenv("MODLIB_ROOT", str(repo))
    monkeypatch.setenv("MODLIB_BUILD_DIR", str(build))
    monkeypatch.delenv("BOOK_REPO_URL", raising=False)
    _touch(repo / "README.md", "# My companion\n\n![curves](figures/05_curves.png)\n\n"
           "| [`01_a`](notebooks/01_a.ipynb) | [`02_b`](notebooks/02_b.ipynb) |\n\n"
           "[notes](docs/README.md), [data](data/README.md), "
           "[profiles](notebooks/profiles.toml), [missing](docs/missing.md)\n")
    _touch(repo / "docs" / "README.md", "# Method notes\n\n[second](second.md) "
           "[first](first.md) [home](../README.md) [gone](gone.md)\n")
    _touch(repo / "docs" / "first.md", "# First\n\n$Q$ and [back](README.md)\n")
    _touch(repo / "docs" / "second.md", "# Second\n")
    _touch(repo / "docs" / "claims.md", "# How claims are tested\n")   # linked by the ledger
    _touch(repo / "docs" / "unlinked.md", "# Unlinked\n")
    _touch(repo / "data" / "README.md", "# Data\n")
    _touch(repo / "figures" / "05_curves.png", "png")
    _touch(repo / "notebooks" / "profiles.toml", "[smoke.all]\n")
    _touch(repo / "docs" / "only_from_notebook.md", "# Only from a notebook\n")
    for module in ["__init__.py", "graphs.py", "cka.py", "companion/__init__.py",
                   "companion/book.py", "data/notes.py"]:
        _touch(repo / "modlib" / module, '"""A module."""\n')
    _touch(repo / "modlib" / "README.txt", "not a module")
    source = [nbformat.v4.new_markdown_cell("# 01 · A\n\nClaim, see "
                                            "[notes](../docs/first.md) and "
                                            "[more](../docs/only_from_notebook.md)."),
              nbformat.v4.new_code_cell("x = 1")]
    _notebook(repo / "notebooks" / "01_a.ipynb", source)
    _notebook(repo / "notebooks" / "02_b.ipynb", [nbformat.v4.new_markdown_cell("# 02 · B")])
    executed = build / "smoke" / "notebooks"
    banner = nbformat.v4.new_markdown_cell("<span>An Exception was encountered</span>")
    _notebook(executed / "01_a.ipynb", [banner, *source], failed=True)
    _notebook(executed / "10_late.ipynb", [nbformat.v4.new_markdown_cell("# 10 · Late")])
    return repo, build


def test_stage_a_fake_repository(fake_repo):
    repo, build = fake_repo
    staged = book.stage("smoke", allow_errors=True)
    out = build / "book"
    assert staged.folder == out
    assert staged.plan.root == "index.md"
    assert staged.plan.notebooks == ["notebooks/01_a.ipynb", "notebooks/10_late.ipynb"]
    assert staged.plan.notes == ["claims.md", "docs/README.md", "docs/second.md",
                                 "docs/first.md", "docs/only_from_notebook.md", "docs/claims.md"]
    ledger = (out / "claims.md").read_text()       # the generated page of the claims ledger
    assert ledger.startswith("# Claims ledger") and "No claims tested yet" in ledger
    assert (out / "docs" / "only_from_notebook.md").is_file()
    assert staged.plan.appendix == ["data/README.md"]
    assert sorted(staged.files) == ["figures/05_curves.png", "notebooks/profiles.toml"]
    assert sorted(staged.problems) == [
        "README.md: link to docs/missing.md has no target in the book",
        "README.md: link to notebooks/02_b.ipynb has no target in the book",
        "docs/README.md: link to gone.md (docs/gone.md) has no target in the book"]
    index = (out / "index.md").read_text()
    assert "![curves](figures/05_curves.png)" in index
    assert "[`01_a`](notebooks/01_a.ipynb)" in index and "| `02_b` |" in index
    assert (out / "figures" / "05_curves.png").read_text() == "png"
    assert "[home](../index.md)" in (out / "docs" / "README.md").read_text()
    assert not (out / "docs" / "unlinked.md").exists()
    # the API reference: one page per science module, the machinery and __init__ left out
    assert staged.plan.api == ["api/modlib.cka.md", "api/modlib.graphs.md"]
    assert sorted(p.name for p in (out / "api").iterdir()) == \
        ["index.md", "modlib.cka.md", "modlib.graphs.md"]
    assert ".. automodule:: modlib.graphs\n   :members:" in \
        (out / "api" / "modlib.graphs.md").read_text()
    assert staged.plan.pages()[-4:] == ["api/index.md", "api/modlib.cka.md",
                                        "api/modlib.graphs.md", "data/README.md"]
    toc = yaml.safe_load((out / "_toc.yml").read_text())
    assert toc["root"] == "index"
    assert [p["caption"] for p in toc["parts"]] == ["Notebooks", "Method notes",
                                                   "API reference", "Appendix"]
    assert [c["file"] for c in toc["parts"][2]["chapters"]] == \
        ["api/index", "api/modlib.cka", "api/modlib.graphs"]
    cfg = yaml.safe_load((out / "_config.yml").read_text())
    assert cfg["title"] == "My companion" and "repository" not in cfg
    nb = nbformat.read(out / "notebooks" / "01_a.ipynb", as_version=4)
    # the source note follows the title cell, not papermill's error banner
    assert nb.cells[1].source.startswith("# 01 · A")
    assert "{download}`notebooks/01_a.ipynb <../_repo/notebooks/01_a.ipynb>`" in \
        nb.cells[2].source
    assert "[notes](../docs/first.md)" in nb.cells[1].source
    bundled = nbformat.read(out / "_repo" / "notebooks" / "01_a.ipynb", as_version=4)
    assert bundled.cells[0].source.startswith("# 01 · A")   # the stored source, no banner
    # a notebook with no source in the repository gets a note without a link
    late = nbformat.read(out / "notebooks" / "10_late.ipynb", as_version=4)
    assert late.cells[1].source == ("*This page is the notebook `notebooks/10_late.ipynb` "
                                    "executed with the `smoke` profile.*")


def test_stage_with_a_repository_url_and_refusals(fake_repo):
    repo, build = fake_repo
    with pytest.raises(book.BookError, match="01_a.ipynb .* failed run"):
        book.stage("smoke")
    staged = book.stage("smoke", repo_url="https://example.org/o/r/", branch="dev",
                        allow_errors=True)
    nb = nbformat.read(staged.folder / "notebooks" / "01_a.ipynb", as_version=4)
    assert "[`notebooks/01_a.ipynb`](https://example.org/o/r/blob/dev/notebooks/01_a.ipynb)" \
        in nb.cells[2].source
    index = (staged.folder / "index.md").read_text()
    assert "[`02_b`](https://example.org/o/r/blob/dev/notebooks/02_b.ipynb)" in index
    assert not (staged.folder / "_repo").exists()
    with pytest.raises(ValueError, match="profile='fast'"):
        book.stage("fast")
    with pytest.raises(FileNotFoundError, match="make figures PROFILE=paper"):
        book.stage("paper")


def test_main_says_what_to_run_when_nothing_was_executed(fake_repo, capsys):
    assert book.main(["--profile", "paper", "--stage-only"]) == 1
    assert "run `make figures PROFILE=paper` first" in capsys.readouterr().err
    assert book.main(["--profile", "smoke", "--stage-only"]) == 1   # 01_a's run failed
    assert "--allow-errors" in capsys.readouterr().err
    assert book.main(["--profile", "smoke", "--stage-only", "--allow-errors"]) == 0
    out = capsys.readouterr()
    # 8 + claims.md, docs/claims.md, the API index and 2 modules
    assert "staged 13 pages (2 notebooks)" in out.out
    assert "warning: README.md: link to docs/missing.md" in out.err


# --------------------------------------------------------------------------------------------
# the built book (make book): nothing loaded from the internet


class _Assets(HTMLParser):
    """Collects the addresses a page loads at view time: scripts, stylesheets, fonts, images,
    frames, media, and URLs inside inline scripts and styles."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self._inline = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "video", "audio", "embed") \
                and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href") and (attrs.get("rel") or "").lower() in (
                "stylesheet", "preload", "modulepreload", "icon", "manifest", "prefetch"):
            self.urls.append(attrs["href"])
        self._inline = tag if tag in ("script", "style") and not attrs.get("src") else None

    def handle_endtag(self, tag):
        self._inline = None

    def handle_data(self, data):
        if self._inline:
            self.urls += re.findall(r"https?://[^\s\"'`)<>]+", data)


def _built_html() -> Path:
    return paths.root() / "build" / "book" / "_build" / "html"


@pytest.mark.book
def test_built_book_loads_nothing_from_the_internet():
    html = _built_html()
    if not (html / "index.html").is_file():
        pytest.skip(f"no book has been built in {html}: run `make book`")
    remote = re.compile(r"^(?:https?:)?//")
    found = []
    pages = sorted(html.rglob("*.html"))
    for page in pages:
        parser = _Assets()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        found += [f"{page.relative_to(html)}: {url}" for url in parser.urls
                  if remote.match(url) and "www.w3.org/" not in url]
    for css in sorted(html.rglob("*.css")):
        text = css.read_text(encoding="utf-8", errors="replace")
        for url in re.findall(r"(?:url\(\s*['\"]?|@import\s+['\"])((?:https?:)?//[^'\")\s]+)",
                              text):
            found.append(f"{css.relative_to(html)}: {url}")
    assert len(pages) >= 3
    assert (html / "_static" / "mathjax" / book.MATHJAX_ENTRY).is_file()
    assert not found, "assets from the internet:\n" + "\n".join(found)
