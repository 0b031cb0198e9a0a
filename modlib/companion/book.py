"""The rendered book: README, method notes, the executed notebooks and the API reference as one
offline HTML site.

Usage::

    python -m modlib.companion.book                  # executed notebooks of the default profile
    python -m modlib.companion.book --profile smoke  # those of the smoke profile (tests, CI)
    python -m modlib.companion.book --stage-only     # write build/book/, no Jupyter Book run

What it does, in order:

1. **stages** a Jupyter Book project in ``build/book/`` (git-ignored, wiped first) that mirrors the
   repository's layout, so that the README's relative links (``figures/…``, ``notebooks/…``,
   ``docs/…``) keep working inside the book: ``README.md`` is the landing page (staged as
   ``index.md``), the claims ledger of the profile's results is a generated page (``claims.md``,
   ``report.claims_page``), ``docs/README.md`` and every page it links are the method notes, and the
   *executed* notebooks of the profile
   (``modlib.companion.run.run_dirs``; nothing is executed again) are copied to ``notebooks/``
   (:func:`stage`: :func:`check_executed`, :class:`Crawl`, :func:`write_book`);
2. **rewrites links** in every staged page (:func:`rewrite_links`): a link to a repository file
   that is not a page of the book (a figure, ``notebooks/profiles.toml``) has that file copied
   next to it; a link to a notebook without an executed copy, or to a file that does not exist,
   loses its target (the text stays) and is reported;
3. adds to each notebook page a line linking its **source notebook** in the repository (the
   repository's web address from ``--repo-url``, ``BOOK_REPO_URL`` or git's ``origin``; without
   one, the stored notebook without outputs is bundled and linked as a download);
4. adds the **API reference**: one page per science module (every ``modlib/*.py`` but
   ``__init__``; :func:`api_modules`), each an ``automodule`` directive that Sphinx autodoc fills
   from the docstrings at build time, so a new module gets its page without an edit here;
5. writes ``_toc.yml`` (:func:`toc_yaml`, in notebook order) and ``_config.yml``
   (:func:`config_yaml`: execution off, MathJax from a local copy, no asset from the internet);
6. copies MathJax 3 into ``_static/mathjax/`` (from ``build/mathjax/``, installed there with npm
   when missing) and runs ``jupyter-book build``; the site is ``build/book/_build/html/``.

Importing this module has no side effects; only :func:`main` and :func:`build` write.
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths
from . import report, run

NOTEBOOK_PATTERN = re.compile(r"^(\d\d)_[A-Za-z0-9_\-]+\.ipynb$")
MATHJAX_VERSION = "3"
CLAIMS_PAGE = "claims.md"   # the generated page of the claims ledger
LANDING = "index.md"   # README.md's place in the book, so that the site opens on index.html
MATHJAX_ENTRY = "tex-mml-chtml.js"   # Sphinx's default MathJax 3 component
API_DIR = "api"   # the API reference's pages: api/index.md, api/modlib.graphs.md, ...
API_INDEX = f"{API_DIR}/index.md"
BOOK_EXTENSIONS = ("sphinx_togglebutton", "sphinx_copybutton", "myst_nb", "jupyter_book",
                   "sphinx_comments", "sphinx_external_toc", "sphinx_design", "sphinx_book_theme",
                   # the API reference (Sphinx's own: nothing to install, nothing fetched)
                   "sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.napoleon")
# autodoc for the API reference: members in source order, signatures with their type hints and
# defaults as written, Google-style sections ("Args:", "Returns:", "Raises:") through napoleon.
# A "Returns:" line reads "what: details", not "type: details" (no rtype field). Without
# intersphinx (the book fetches nothing) the types of other packages (torch.Tensor,
# pandas.DataFrame, pathlib.Path) have no target: they stay plain text, while a broken reference
# inside modlib still fails the strict build.
API_SPHINX_CONFIG = {
    "autodoc_member_order": "bysource",
    "autodoc_typehints": "signature",
    "autodoc_preserve_defaults": True,
    "autodoc_inherit_docstrings": False,   # no torch docstring for an undocumented forward()
    "autosummary_generate": False,
    "add_module_names": False,
    "napoleon_google_docstring": True,
    "napoleon_numpy_docstring": False,
    "napoleon_use_rtype": False,
    "nitpick_ignore_regex": [["py:class", r"(?!modlib\.)[A-Za-z_]\w*(\.\w+)+"]],
}
FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" '
           'height="16" rx="3" fill="#2a5d8f"/><text x="8" y="12.5" font-size="12" '
           'text-anchor="middle" fill="#fff" font-family="sans-serif">Q</text></svg>\n')
# [text](target) and ![alt](target), with an optional "title"; not inside inline code
_LINK = re.compile(r'(?P<bang>!?)\[(?P<text>[^\]\n]*)\]\(\s*(?P<target><[^>\n]*>|[^)\s]+)'
                   r'(?P<title>\s+"[^"\n]*")?\s*\)')
_FENCE = re.compile(r"^(```|~~~)")
_EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.\-]*:|//|#)")   # scheme:, //host, #anchor


def book_dir() -> Path:
    """``build/book/``: the staged Jupyter Book project (the site is ``_build/html/`` in it)."""
    return paths.build_dir() / "book"


def html_dir() -> Path:
    """``build/book/_build/html/``: the built site (open ``index.html``; publish this folder)."""
    return book_dir() / "_build" / "html"


def mathjax_cache_dir() -> Path:
    """``build/mathjax/``: npm's ``mathjax`` package, installed once and copied into each book."""
    return paths.build_dir() / "mathjax"


# --------------------------------------------------------------------------------------------
# Pure parts (unit-tested without a browser)


def notebook_files(folder: Path) -> list[Path]:
    """The notebooks ``NN_slug.ipynb`` in ``folder``, in numeric order (other files ignored).

    Raises:
        FileNotFoundError: ``folder`` does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"notebook folder {folder} does not exist")
    found = [p for p in folder.iterdir() if p.is_file() and NOTEBOOK_PATTERN.match(p.name)]
    return sorted(found, key=lambda p: (int(p.name[:2]), p.name))


def markdown_links(text: str) -> list[str]:
    """Targets of the Markdown links and images in ``text``, in order, outside fenced code."""
    targets = []
    for chunk, in_code in _split_fences(text):
        if not in_code:
            targets += [_clean_target(m.group("target")) for m in _LINK.finditer(chunk)]
    return targets


def _clean_target(target: str) -> str:
    return target[1:-1] if target.startswith("<") else target


def _split_fences(text: str) -> list[tuple[str, bool]]:
    """``text`` cut into ``(chunk, inside_fenced_code)`` pieces, joined again they give ``text``."""
    pieces, current, in_code = [], [], False
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line.lstrip()):
            if not in_code:
                pieces.append(("".join(current), False))
                current, in_code = [line], True
            else:
                current.append(line)
                pieces.append(("".join(current), True))
                current, in_code = [], False
            continue
        current.append(line)
    pieces.append(("".join(current), in_code))
    return [p for p in pieces if p[0]]


def resolve_target(source: str, target: str) -> tuple[str, str] | None:
    """The repository path a relative link points at, and its ``#anchor`` part (``""`` if none).

    ``source`` is the repository path of the page that holds the link (``"docs/README.md"``).
    Returns ``None`` for links that leave the repository's files: URLs with a scheme
    (``https:``, ``mailto:``), ``//host`` links, pure ``#anchors``, and paths above the root.
    """
    if not target or _EXTERNAL.match(target):
        return None
    path, _, anchor = target.partition("#")
    path = path.split("?", 1)[0]
    if not path:
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
    if joined == ".." or joined.startswith("../") or joined.startswith("/"):
        return None
    return joined, anchor


def relative_link(source: str, target: str) -> str:
    """The link from the page ``source`` to the repository path ``target`` (both posix paths)."""
    return posixpath.relpath(target, posixpath.dirname(source) or ".")


def rewrite_links(text: str, source: str, resolve) -> tuple[str, list[str]]:
    """Rewrite the relative links of a Markdown page for the book.

    ``resolve(repo_path)`` says what becomes of a link to ``repo_path`` (a normalised posix path
    in the repository): a repository path (the same or another) that the book holds, a URL
    (``https://…``), or ``None`` when it cannot be linked. Links to URLs and anchors, and
    everything inside fenced code, are left alone. A link whose target resolves to ``None``
    keeps its text without the link (an image keeps its alt text in italics), so the book has
    no broken links.

    Returns:
        ``(new_text, problems)``: ``problems`` names each link that lost its target.
    """
    problems: list[str] = []

    def replace(match: re.Match) -> str:
        target = _clean_target(match.group("target"))
        resolved = resolve_target(source, target)
        if resolved is None:
            return match.group(0)
        repo_path, anchor = resolved
        new = resolve(repo_path)
        if new is None:
            shown = target if target.split("#")[0] == repo_path else f"{target} ({repo_path})"
            problems.append(f"{source}: link to {shown} has no target in the book")
            text_ = match.group("text")
            return f"*{text_}*" if match.group("bang") else text_
        if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:", new):
            new = relative_link(source, new)
        if anchor:
            new += "#" + anchor
        if new == target:
            return match.group(0)
        if re.search(r"[\s()]", new):
            new = f"<{new}>"
        return f"{match.group('bang')}[{match.group('text')}]({new}{match.group('title') or ''})"

    out = []
    for chunk, in_code in _split_fences(text):
        out.append(chunk if in_code else _LINK.sub(replace, chunk))
    return "".join(out), problems


_MATH = re.compile(r"\$\$.+?\$\$|(?<![\\$])\$(?![\s$])[^$\n]+?(?<![\s\\])\$(?!\d)"
                   r"|\\begin\{[a-z]+\*?\}|\\\(|\\\[", re.S)


def has_math(markdown: str) -> bool:
    """Whether Markdown text holds math that MathJax must render: ``$…$``, ``$$…$$``,
    ``\\begin{…}``, ``\\(`` or ``\\[`` outside fenced and inline code (a price such as
    "$5 and $6" is not math: the closing ``$`` may not be followed by a digit)."""
    for chunk, in_code in _split_fences(markdown):
        if not in_code and _MATH.search(re.sub(r"`[^`\n]*`", "", chunk)):
            return True
    return False


def notebook_has_math(nb: dict) -> bool:
    """Whether a notebook (nbformat dict) has math in a Markdown cell or a Markdown output."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown" and has_math(_text(cell.get("source", ""))):
            return True
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/markdown" in data and has_math(_text(data["text/markdown"])):
                return True
    return False


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


@dataclass
class TocPlan:
    """The book's pages as staged paths (``index.md``, ``docs/x.md``, ``notebooks/NN.ipynb``);
    ``api`` holds the module pages of the API reference (``api/modlib.graphs.md``), whose index
    ``api/index.md`` comes first when there are any."""

    root: str
    notes: list[str] = field(default_factory=list)
    notebooks: list[str] = field(default_factory=list)
    appendix: list[str] = field(default_factory=list)
    api: list[str] = field(default_factory=list)

    def api_part(self) -> list[str]:
        return [API_INDEX, *self.api] if self.api else []

    def pages(self) -> list[str]:
        return [self.root, *self.notes, *self.notebooks, *self.api_part(), *self.appendix]


def _yaml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)   # a JSON string is a valid YAML scalar


def toc_yaml(plan: TocPlan) -> str:
    """``_toc.yml`` (Jupyter Book's ``jb-book`` format) for ``plan``: the root page, then the
    parts "Notebooks", "Method notes", "API reference" and "Appendix" (empty parts are left
    out). Paths are written without their suffix, as Jupyter Book expects."""
    def stem(page: str) -> str:
        return posixpath.splitext(page)[0]

    lines = ["# Generated by python -m modlib.companion.book: do not edit", "format: jb-book",
             f"root: {_yaml_str(stem(plan.root))}"]
    parts = [("Notebooks", plan.notebooks), ("Method notes", plan.notes),
             ("API reference", plan.api_part()), ("Appendix", plan.appendix)]
    parts = [(caption, pages) for caption, pages in parts if pages]
    if parts:
        lines.append("parts:")
        for caption, pages in parts:
            lines.append(f"  - caption: {_yaml_str(caption)}")
            lines.append("    chapters:")
            lines += [f"      - file: {_yaml_str(stem(p))}" for p in pages]
    return "\n".join(lines) + "\n"


def config_yaml(title: str, repo_url: str | None = None, branch: str = "main",
                profile: str = "default") -> str:
    """``_config.yml``: execution off (the notebooks are already executed), MathJax from the
    book's own ``_static/mathjax/``, no widget JavaScript from a CDN, Markdown outputs parsed as
    MyST (so generated text with ``$…$`` shows as math), stderr outputs (progress bars) left
    out, and repository buttons when ``repo_url`` is known."""
    cfg = {
        "title": title,
        "author": "",
        "copyright": "",
        "only_build_toc_files": True,
        "exclude_patterns": ["_build", "_repo", "_vendor", "**.ipynb_checkpoints"],
        "execute": {"execute_notebooks": "off"},
        "parse": {"myst_enable_extensions": ["amsmath", "dollarmath", "colon_fence"]},
        "html": {
            "home_page_in_navbar": True,
            "use_repository_button": bool(repo_url),
            "use_issues_button": False,
            "use_edit_page_button": False,
            "extra_footer": f"<p>Built from the executed notebooks of the "
                            f"<code>{profile}</code> profile.</p>",
        },
        "launch_buttons": {"notebook_interface": "classic", "binderhub_url": "",
                           "jupyterhub_url": "", "thebe": False, "colab_url": ""},
        "sphinx": {"config": {
            # Jupyter Book's extensions less sphinx-thebe, which writes a CDN address into every
            # page (no launch buttons in an offline book)
            "extensions": list(BOOK_EXTENSIONS),
            "mathjax_path": f"mathjax/{MATHJAX_ENTRY}",
            "myst_heading_anchors": 3,   # links such as docs/x.md#a-section resolve
            # _vendor/ is copied to _static/ as it is (Jupyter Book would add every .js of a
            # _static/ folder to every page, MathJax's lazily loaded components included)
            "html_static_path": ["_vendor"],
            "nb_render_markdown_format": "myst",
            "nb_ipywidgets_js": {},
            # stderr is progress bars and kernel chatter in a run headless; the downloadable
            # executed notebook keeps it
            "nb_output_stderr": "remove",
            "html_show_sourcelink": False,
            "html_favicon": "_vendor/favicon.svg",
            # the theme's default "" makes pydata-sphinx-theme log a console error on a first
            # visit ("Got invalid theme mode")
            "html_context": {"default_mode": "light"},
            "html_theme_options": {},
            "suppress_warnings": ["mystnb.unknown_mime_type"],
            **API_SPHINX_CONFIG,
        }},
    }
    if repo_url:
        cfg["repository"] = {"url": repo_url, "branch": branch, "path_to_book": ""}
        # no theme source button: it would send the landing page to index.md, not README.md;
        # each notebook page has its own source link (_source_note)
        cfg["sphinx"]["config"]["html_theme_options"].update({
            "use_source_button": False, "use_repository_button": True,
            "repository_url": repo_url, "repository_branch": branch, "path_to_docs": ""})
    # JSON is a subset of YAML 1.2, and Jupyter Book reads it with PyYAML, which accepts it
    return "# Generated by python -m modlib.companion.book: do not edit\n" + json.dumps(
        cfg, indent=2, ensure_ascii=False) + "\n"


def repo_web_url(remote: str) -> str | None:
    """The web address of a git remote (``git@github.com:o/r.git`` → ``https://github.com/o/r``);
    ``None`` for a local path."""
    remote = remote.strip()
    match = re.match(r"^[\w.\-]+@([\w.\-]+):(.+?)(?:\.git)?/?$", remote)
    if match:
        return f"https://{match.group(1)}/{match.group(2)}"
    match = re.match(r"^(?:ssh|git)://(?:[\w.\-]+@)?([\w.\-]+)(?::\d+)?/(.+?)(?:\.git)?/?$", remote)
    if match:
        return f"https://{match.group(1)}/{match.group(2)}"
    match = re.match(r"^(https?://)(?:[^@/]+@)?(.+?)(?:\.git)?/?$", remote)
    if match:
        return match.group(1) + match.group(2)
    return None


def source_url(repo_url: str, branch: str, repo_path: str) -> str:
    """Where ``repo_path`` is shown on the repository's web page (GitHub and GitLab style)."""
    return f"{repo_url.rstrip('/')}/blob/{branch}/{repo_path}"


# --------------------------------------------------------------------------------------------
# Staging


@dataclass
class Staged:
    """What :func:`stage` wrote: the pages, the copied files, and the links it had to drop."""

    folder: Path
    plan: TocPlan
    files: list[str]
    problems: list[str]


def _title(readme: str) -> str:
    for line in readme.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return "Companion"


def _git_origin(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "remote", "get-url", "origin"], cwd=root,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return repo_web_url(out.stdout) if out.returncode == 0 and out.stdout.strip() else None


class BookError(Exception):
    """The book cannot be built as asked; the message says why and what to run."""


def failed_run(nb: dict) -> bool:
    """Whether papermill recorded an exception in this executed notebook (nbformat dict)."""
    return bool(nb.get("metadata", {}).get("papermill", {}).get("exception"))


def stage(profile: str = "default", out: Path | None = None, repo_url: str | None = None,
          branch: str = "main", allow_errors: bool = False) -> Staged:
    """Write the Jupyter Book project for ``profile`` into ``out`` (default ``build/book/``,
    emptied first). Returns what was staged; :func:`build` renders it.

    Three steps: :func:`check_executed` (the executed notebooks, refused when a run failed),
    :class:`Crawl` (every page and file reached by links from the README and the notebooks,
    with the links rewritten for the book; nothing is written) and :func:`write_book`.

    A notebook whose run failed (papermill recorded an exception) stops the staging unless
    ``allow_errors``: the book would show a traceback instead of the results.

    Raises:
        ValueError: ``profile`` is not one of ``modlib.companion.run.PROFILES``.
        FileNotFoundError: the profile has no executed notebooks (run
            ``python -m modlib.companion.run --profile PROFILE`` or ``make figures`` first), or
            no README.
        BookError: an executed notebook holds a failed run and ``allow_errors`` is false.
    """
    root = paths.root()
    executed = check_executed(profile, allow_errors)
    if repo_url is None:
        repo_url = os.environ.get("BOOK_REPO_URL") or _git_origin(root)
    crawl = Crawl(root, executed, repo_url.rstrip("/") if repo_url else None, branch)
    # the claims ledger of this profile's results, a generated page (companion.report)
    crawl.add_page(CLAIMS_PAGE, report.claims_page(
        run.run_dirs(profile, canonical=(profile == "default"))["metrics"]))
    crawl.notebooks(profile)
    crawl.pages()
    plan = plan_pages(crawl)
    plan.api = [api_path(module) for module in api_modules(root)]
    out = _empty_folder(out)
    write_book(out, crawl, plan, profile)
    return Staged(folder=out, plan=plan, files=list(crawl.files), problems=crawl.problems)


def check_executed(profile: str, allow_errors: bool = False) -> list[Path]:
    """The executed notebooks of ``profile`` (``modlib.companion.run.run_dirs``), in notebook order.

    Raises:
        ValueError: ``profile`` is not one of ``modlib.companion.run.PROFILES``.
        FileNotFoundError: the profile has no executed notebooks; the message says what to run.
        BookError: one of them holds a failed run and ``allow_errors`` is false.
    """
    import nbformat

    from .run import PROFILES

    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is not allowed: choose one of {PROFILES}")
    executed_dir = run.run_dirs(profile, canonical=(profile == "default"))["notebooks"]
    executed = notebook_files(executed_dir) if executed_dir.is_dir() else []
    hint = "make figures" if profile == "default" else f"make figures PROFILE={profile}"
    if not executed:
        raise FileNotFoundError(f"no executed notebooks NN_*.ipynb in {executed_dir}: run `{hint}` "
                                "first (the book shows executed notebooks, it runs nothing)")
    failed = [p.name for p in executed if failed_run(nbformat.read(p, as_version=4))]
    if failed and not allow_errors:
        raise BookError(f"the executed copies of {', '.join(failed)} in {executed_dir} hold a "
                        f"failed run: fix and rerun them (`{hint}`), or build anyway with "
                        "--allow-errors")
    return executed


class Crawl:
    """The book's content, found by following links: the README, the executed notebooks, and
    every Markdown page and file of the repository that they link, directly or through other
    pages. Reads the repository and writes nothing (:func:`write_book` does).

    :meth:`resolve` decides what a link becomes (it is the resolver of :func:`rewrite_links`):
    a page of the book, a file copied beside the pages, the repository's web page for a
    notebook that was not executed or a folder, or ``None`` (the link is dropped and reported).

    Attributes:
        notebooks_staged: staged path → notebook (nbformat) with its links rewritten.
        written: repository path → rewritten Markdown text, README first, in the order found.
        files: repository paths of the linked files that are not pages (figures, TOML, …).
        copies: staged path → source file to copy (``files``, and notebook sources bundled
            under ``_repo/`` when the repository has no web address).
        problems: one line per link that lost its target.
        generated: the pages added with :meth:`add_page` (the claims ledger).
    """

    def __init__(self, root: Path, executed: list[Path], repo_url: str | None,
                 branch: str = "main"):
        readme = root / "README.md"
        if not readme.is_file():
            raise FileNotFoundError(f"{readme} does not exist")
        self.root, self.repo_url, self.branch = root, repo_url, branch
        self.executed = {f"notebooks/{p.name}": p for p in executed}
        self.sources = {"README.md": readme.read_text(encoding="utf-8")}   # pages found
        self.queue = ["README.md"]   # pages found and not yet rewritten
        self.generated: list[str] = []   # pages made by the companion, not repository files
        self.notebooks_staged: dict = {}
        self.written: dict[str, str] = {}
        self.files: list[str] = []
        self.copies: dict[str, Path] = {}
        self.problems: list[str] = []

    def resolve(self, repo_path: str) -> str | None:
        """What a link to ``repo_path`` becomes: a staged path, a URL, or ``None``."""
        if repo_path == "README.md":
            return LANDING
        if repo_path in self.executed or repo_path in self.sources:
            return repo_path
        source = self.root / repo_path
        if repo_path.startswith("notebooks/") and NOTEBOOK_PATTERN.match(
                posixpath.basename(repo_path)):
            # a notebook without an executed copy: its source on the repository's page
            return self._web(repo_path) if source.is_file() else None
        if source.is_file():
            if repo_path.endswith(".md"):
                self.sources[repo_path] = source.read_text(encoding="utf-8")
                self.queue.append(repo_path)
            elif repo_path not in self.files:
                self.files.append(repo_path)
                self.copies[repo_path] = source
            return repo_path
        if source.is_dir() and self.repo_url:
            return f"{self.repo_url}/tree/{self.branch}/{repo_path}"
        return None

    def _web(self, repo_path: str) -> str | None:
        return source_url(self.repo_url, self.branch, repo_path) if self.repo_url else None

    def add_page(self, page: str, text: str) -> None:
        """Add a generated Markdown page (staged as ``page``, its links relative to it), to be
        rewritten and followed as any page; :func:`plan_pages` puts it first in the notes."""
        self.sources[page] = text
        self.queue.append(page)
        self.generated.append(page)

    def notebooks(self, profile: str) -> None:
        """Read the executed notebooks, rewrite their Markdown links and add the line that
        links each one's source (:func:`_source_note`)."""
        import nbformat

        for repo_path, executed_path in self.executed.items():
            nb = nbformat.read(executed_path, as_version=4)
            for cell in nb.cells:
                if cell.cell_type == "markdown":
                    cell.source, found = rewrite_links(cell.source, repo_path, self.resolve)
                    self.problems += found
            note = _source_note(repo_path, profile, self.repo_url, self.branch, self.root,
                                self.copies)
            nb.cells.insert(_first_markdown(nb) + 1, nbformat.v4.new_markdown_cell(note))
            self.notebooks_staged[repo_path] = nb

    def pages(self) -> None:
        """Rewrite every Markdown page found, following the links of each to further pages."""
        while self.queue:
            page = self.queue.pop(0)
            self.written[page], found = rewrite_links(self.sources[page], page, self.resolve)
            self.problems += found


def plan_pages(crawl: Crawl) -> TocPlan:
    """The table of contents of a crawl: the notebooks in order; the method notes (the
    generated pages such as the claims ledger, then ``docs/*.md`` in the order of
    ``docs/README.md``'s links, then any other ``docs/`` page reached); every other page in
    the appendix."""
    written = crawl.written
    docs_index = "docs/README.md"
    order = [docs_index] if docs_index in written else []
    if order:
        for target in markdown_links(written[docs_index]):
            resolved = resolve_target(docs_index, target)
            if resolved and resolved[0] in written and resolved[0] not in order:
                order.append(resolved[0])
    order += [p for p in written if p.startswith("docs/") and p not in order]
    order = [*crawl.generated, *order]
    return TocPlan(root=LANDING, notes=order, notebooks=list(crawl.notebooks_staged),
                   appendix=[p for p in written if p != "README.md" and p not in order])


def _empty_folder(out: Path | None) -> Path:
    out = Path(out) if out is not None else book_dir()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return out


def write_book(out: Path, crawl: Crawl, plan: TocPlan, profile: str) -> None:
    """Write a crawl into the empty folder ``out``: notebooks, pages, copied files, the API
    reference pages of ``plan.api``, ``_toc.yml``, ``_config.yml`` and the favicon."""
    import nbformat

    for repo_path, nb in crawl.notebooks_staged.items():
        (out / repo_path).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out / repo_path)
    for page, text in crawl.written.items():
        _write(out / (LANDING if page == "README.md" else page), text)
    for staged_path, source in crawl.copies.items():
        (out / staged_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, out / staged_path)
    write_api_pages(out, plan.api)
    _write(out / "_toc.yml", toc_yaml(plan))
    _write(out / "_config.yml", config_yaml(_title(crawl.written["README.md"]), crawl.repo_url,
                                            crawl.branch, profile))
    # a favicon of its own, or the browser asks the server for /favicon.ico
    _write(out / "_vendor" / "favicon.svg", FAVICON)
    _write(out / "PROFILE", profile + "\n")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------------
# The API reference: one page per science module, generated by Sphinx autodoc at build time


def api_modules(root: Path) -> list[str]:
    """The science modules of the repository at ``root``: ``modlib.NAME`` for every
    ``modlib/NAME.py`` but ``__init__.py``, sorted (the machinery in ``modlib/companion/`` is
    not among them); ``[]`` when there is no ``modlib/`` folder. A new module gets its page
    without any edit here."""
    package = Path(root) / "modlib"
    if not package.is_dir():
        return []
    return sorted(f"modlib.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__")


def api_path(module: str) -> str:
    """The staged page of a module's reference: ``api/modlib.graphs.md``."""
    return f"{API_DIR}/{module}.md"


def api_page(module: str) -> str:
    """A module's reference page: a title and an ``automodule`` directive (MyST's
    ``eval-rst``) that Sphinx autodoc fills from the docstrings when the book is built."""
    return (f"# `{module}`\n\n"
            f"*Generated from the docstrings of `{module.replace('.', '/')}.py` when the book "
            "was built.*\n\n"
            "```{eval-rst}\n"
            f".. automodule:: {module}\n"
            "   :members:\n"
            "   :show-inheritance:\n"
            "```\n")


def api_index(modules: list[str]) -> str:
    """The reference's first page: what it covers and a table of the modules with the first
    line of each one's docstring (``autosummary``), each linked to its page."""
    rows = "".join(f"   {module}\n" for module in modules)
    return ("# API reference\n\n"
            "The science package `modlib`, one page per module, generated from the docstrings "
            "(shapes, units, errors raised, the formula's source, and the notebook that "
            "introduces each function). The companion's machinery, `modlib.companion`, is "
            "not part of it.\n\n"
            "```{eval-rst}\n.. autosummary::\n\n" + rows + "```\n")


def write_api_pages(out: Path, pages: list[str]) -> None:
    """Write the API pages ``pages`` (from :func:`api_path`) and, when there are any, their
    index ``api/index.md`` (which :func:`toc_yaml` puts first in the part)."""
    if not pages:
        return
    modules = [posixpath.splitext(posixpath.basename(p))[0] for p in pages]
    _write(out / API_INDEX, api_index(modules))
    for page, module in zip(pages, modules):
        _write(out / page, api_page(module))


def _first_markdown(nb) -> int:
    """The notebook's title cell (its first Markdown cell opening with a heading; papermill puts
    an error banner before it when the run failed), else its first Markdown cell, else -1."""
    markdown = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "markdown"]
    for i in markdown:
        if nb.cells[i].source.lstrip().startswith("#"):
            return i
    return markdown[0] if markdown else -1


def _source_note(repo_path: str, profile: str, repo_url: str | None, branch: str,
                 root: Path, copies: dict[str, Path]) -> str:
    """The line under a notebook's first cell that links its source in the repository. Without
    a web address the stored notebook (without outputs) is bundled: it is added to ``copies``
    (staged path → source file) and linked as a download."""
    name = posixpath.basename(repo_path)
    if not repo_url:
        bundled = f"_repo/{repo_path}"
        if not (root / repo_path).is_file():
            return (f"*This page is the notebook `{repo_path}` executed with the `{profile}` "
                    "profile.*")
        copies[bundled] = root / repo_path
        # a download role: a plain link to an .ipynb would be read as a page of the book
        reference = f"{{download}}`{repo_path} <{relative_link(repo_path, bundled)}>`"
    else:
        reference = f"[`{repo_path}`]({source_url(repo_url, branch, repo_path)})"
    return (f"*This page is the notebook {reference} executed with the `{profile}` profile; to "
            f"run it yourself, open `{name}` in Jupyter with the kernel \"Python (modlib)\".*")


# --------------------------------------------------------------------------------------------
# Building


def ensure_mathjax() -> Path:
    """The ``es5`` folder of npm's ``mathjax`` 3 package in ``build/mathjax/``, installed with
    ``npm install --prefix`` when missing.

    Raises:
        BookError: MathJax is missing and npm is not installed (or failed).
    """
    es5 = mathjax_cache_dir() / "node_modules" / "mathjax" / "es5"
    if (es5 / MATHJAX_ENTRY).is_file():
        return es5
    npm = shutil.which("npm")
    if npm is None:
        raise BookError(f"MathJax is not in {es5} and npm is not installed: install Node.js "
                           f"and npm (Debian: apt-get install npm), or put npm's mathjax@"
                           f"{MATHJAX_VERSION} package there")
    mathjax_cache_dir().mkdir(parents=True, exist_ok=True)
    run = subprocess.run([npm, "install", "--prefix", str(mathjax_cache_dir()), "--no-save",
                          "--no-audit", "--no-fund", f"mathjax@{MATHJAX_VERSION}"],
                         capture_output=True, text=True)
    if run.returncode != 0 or not (es5 / MATHJAX_ENTRY).is_file():
        raise BookError(f"npm could not install mathjax@{MATHJAX_VERSION}:\n{run.stderr}")
    return es5


def bundle_mathjax(folder: Path) -> Path:
    """Copy MathJax (the entry script, its fonts and its loadable components, without the
    speech-rule data) into ``folder/_vendor/mathjax/`` (the site's ``_static/mathjax/``);
    returns that folder."""
    es5 = ensure_mathjax()
    target = folder / "_vendor" / "mathjax"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(es5, target, ignore=shutil.ignore_patterns("sre", "*-full*", "node-main*"))
    return target


def build(staged: Staged, strict: bool = True) -> Path:
    """Bundle MathJax and run ``jupyter-book build`` (HTML) on a staged folder; returns the site.

    Raises:
        BookError: Jupyter Book is not installed (``pip install -e .[book]``) or failed.
    """
    bundle_mathjax(staged.folder)
    jb = Path(sys.executable).with_name("jupyter-book")
    if not jb.is_file():
        found = shutil.which("jupyter-book")
        if found is None:
            raise BookError("jupyter-book is not installed: pip install -e '.[book]'")
        jb = Path(found)
    command = [str(jb), "build", str(staged.folder), "--builder", "html", "--path-output",
               str(staged.folder)]
    if strict:
        command += ["-W", "-n", "--keep-going"]
    # autodoc imports the repository's own modlib (the API reference documents what is staged)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(paths.root()),
                                                      env.get("PYTHONPATH")]))
    run = subprocess.run(command, text=True, capture_output=True, env=env)
    log = staged.folder / "build.log"
    log.write_text(run.stdout + run.stderr)
    if run.returncode != 0:
        raise BookError(f"jupyter-book build failed (log: {log}):\n"
                           + "\n".join((run.stdout + run.stderr).splitlines()[-40:]))
    site = staged.folder / "_build" / "html"
    (site / ".nojekyll").touch()   # GitHub Pages must serve _static/ and _images/ as they are
    return site


def main(argv=None) -> int:
    from .run import PROFILES

    parser = argparse.ArgumentParser(prog="python -m modlib.companion.book",
                                     description="Build the HTML book of the executed notebooks.")
    parser.add_argument("--profile", default="default", choices=PROFILES,
                        help="whose executed notebooks (default: default)")
    parser.add_argument("--repo-url", default=None,
                        help="the repository's web address, for the source links (default: "
                             "BOOK_REPO_URL, else git's origin)")
    parser.add_argument("--branch", default=os.environ.get("BOOK_REPO_BRANCH", "main"))
    parser.add_argument("--stage-only", action="store_true", help="write build/book/ only")
    parser.add_argument("--allow-errors", action="store_true",
                        help="include notebooks whose run failed (they show the traceback)")
    parser.add_argument("--no-strict", action="store_true",
                        help="do not turn Sphinx warnings into errors")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        staged = stage(args.profile, repo_url=args.repo_url, branch=args.branch,
                       allow_errors=args.allow_errors)
    except (FileNotFoundError, ValueError, BookError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for problem in staged.problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(f"staged {len(staged.plan.pages())} pages ({len(staged.plan.notebooks)} notebooks) "
          f"in {staged.folder}", flush=True)
    if args.stage_only:
        return 0
    try:
        site = build(staged, strict=not args.no_strict)
    except BookError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"built {site / 'index.html'} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
