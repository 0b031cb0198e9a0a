"""The built book, opened page by page in a real headless browser (Debian's chromium).

Runs against the book that ``make book`` (or ``make book PROFILE=smoke``) left in
``build/book/_build/html/`` (another folder through ``MODLIB_BOOK_HTML``), served from a local
HTTP server on 127.0.0.1. Every HTML page is opened; the test fails on:

- an image that did not load (``naturalWidth`` 0 after the page and its images finished);
- a same-site link whose file does not exist, or whose ``#anchor`` is no id of the target page;
- a console message of level SEVERE (a script error, a failed request);
- a request the server answered with an error, or any request to another host;
- unrendered math: a ``.math`` element without MathJax output, raw TeX (``$$``, ``\\(``,
  ``$…\\x…$``) left in the text, or no MathJax output at all on a page whose source has math.

It also checks the API reference (a page per science module, each showing every documented
public function and class of its module, all linked from the reference's index), that the
search page finds a term, and saves screenshots of the landing page and
of notebook 05 (its top and its first figure) in ``build/book/``. Skipped, with the reason, where
selenium, chromium or chromedriver is missing, or where no book has been built.
"""

from __future__ import annotations

import functools
import http.server
import importlib
import inspect
import json
import os
import re
import shutil
import threading
import urllib.parse
from pathlib import Path

import pytest

from modlib import paths
from modlib.companion import book

pytestmark = pytest.mark.book

SKIPPED_DIRS = {"_static", "_sources", "_downloads", "_images", "_sphinx_design_static"}
# raw TeX left in the visible text: $$, \( \) \[ \], or $...$ holding a TeX command
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\$[^$\n]*\\[a-zA-Z]+[^$\n]*\$|\\begin\{")


def _html_root() -> Path:
    # the real build folder: tests run with MODLIB_BUILD_DIR pointed at a temporary folder
    override = os.environ.get("MODLIB_BOOK_HTML")
    return Path(override) if override else paths.root() / "build" / "book" / "_build" / "html"


def _browser_paths() -> tuple[str | None, str | None]:
    """chromium and chromedriver: ``BOOK_CHROMIUM`` / ``BOOK_CHROMEDRIVER``, else on PATH;
    ``None`` for one that is not an existing file."""
    chromium = os.environ.get("BOOK_CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")
    driver = os.environ.get("BOOK_CHROMEDRIVER") or shutil.which("chromedriver")
    return tuple(p if p and os.path.isfile(p) else None for p in (chromium, driver))


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the book quietly and records every request with its status."""

    requests: list  # set per server

    def log_request(self, code="-", size="-"):
        self.requests.append((int(code) if str(code).isdigit() else int(getattr(code, "value", 0)),
                              urllib.parse.unquote(self.path)))

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    root = _html_root()
    if not (root / "index.html").is_file():
        pytest.skip(f"no book has been built in {root}: run `make book` (or `make book "
                    "PROFILE=smoke`) first")
    requests: list = []
    handler = type("Handler", (_Handler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"root": root, "origin": f"http://127.0.0.1:{server.server_address[1]}",
               "requests": requests}
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed: pip install -e '.[book]'")
    chromium, chromedriver = _browser_paths()
    if not chromium or not chromedriver:
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver "
                    "(`make book-test` does it when run as root)")
    os.environ.setdefault("SE_OFFLINE", "true")   # selenium must not look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    flags = ["--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--window-size=1280,900",
             f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.append("--no-sandbox")
    for flag in flags:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _pages(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.html")
                  if not SKIPPED_DIRS & set(p.relative_to(root).parts[:-1]))


@functools.lru_cache(maxsize=None)
def _ids(file: Path) -> frozenset:
    text = file.read_text(encoding="utf-8", errors="replace")
    return frozenset(re.findall(r'\b(?:id|name)="([^"]+)"', text))


def _source_has_math(root: Path, page: str) -> bool:
    """Whether the staged source of an HTML page (``.md`` or ``.ipynb`` beside ``_build``) has
    math; pages without a source (search, index) have none."""
    staged = root.parent.parent / page[: -len(".html")]
    if staged.with_suffix(".md").is_file():
        return book.has_math(staged.with_suffix(".md").read_text(encoding="utf-8"))
    if staged.with_suffix(".ipynb").is_file():
        return book.notebook_has_math(json.loads(staged.with_suffix(".ipynb").read_text()))
    return False


# after MathJax has typeset and every image has finished loading or failing
_SETTLE = """
const done = arguments[arguments.length - 1];
(async () => {
  window.scrollTo(0, document.body.scrollHeight);
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await Promise.all(Array.from(document.images).map(img => img.complete ? null :
      new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); })));
  done(true);
})().catch(e => done(String(e)));
"""

_INSPECT = """
const skip = 'pre, code, script, style, textarea, mjx-container, .highlight, .math';
const texts = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const node = walker.currentNode;
  if (node.parentElement && !node.parentElement.closest(skip) && node.textContent.trim()) {
    texts.push(node.textContent);
  }
}
return {
  badImages: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))
      .map(i => i.getAttribute('src')),
  images: document.images.length,
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  mathElements: document.querySelectorAll('.math').length,
  unrenderedMath: Array.from(document.querySelectorAll('.math'))
      .filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 60)),
  rendered: document.querySelectorAll('mjx-container').length,
  texts: texts,
  resources: performance.getEntriesByType('resource').map(e => e.name),
  title: document.title,
};
"""


def _check_link(site, href: str, page: str) -> str | None:
    """A message when a same-site link does not resolve to a file (and anchor); else None."""
    if not href.startswith(site["origin"] + "/"):
        return None   # another site (not fetched: the book is read offline) or javascript:
    parsed = urllib.parse.urlsplit(href)
    target = urllib.parse.unquote(parsed.path).lstrip("/")
    if not target or target.endswith("/"):
        target += "index.html"
    file = site["root"] / target
    if not file.is_file():
        return f"{page}: broken link {href} ({target} does not exist)"
    if parsed.fragment and file.suffix == ".html":
        anchor = urllib.parse.unquote(parsed.fragment)
        if anchor not in _ids(file):
            return f"{page}: link {href}: no id {anchor!r} in {target}"
    return None


def test_every_page_renders_in_a_browser(site, browser):
    root, origin = site["root"], site["origin"]
    pages = _pages(root)
    assert "index.html" in pages and len(pages) >= 3, pages
    failures: list[str] = []
    checked_links: dict[str, str | None] = {}
    rendered_pages = 0
    for page in pages:
        seen = len(site["requests"])
        browser.get(f"{origin}/{page}")
        settled = browser.execute_async_script(_SETTLE)
        if settled is not True:
            failures.append(f"{page}: the page did not settle: {settled}")
        info = browser.execute_script(_INSPECT)
        for src in info["badImages"]:
            failures.append(f"{page}: image not loaded (naturalWidth 0): {src}")
        for entry in browser.get_log("browser"):
            if entry.get("level") == "SEVERE":
                failures.append(f"{page}: console error: {entry.get('message')}")
        for status, path in site["requests"][seen:]:
            if status >= 400:
                failures.append(f"{page}: the server answered {status} for {path}")
        for resource in info["resources"]:
            if not resource.startswith(origin + "/") and not resource.startswith("data:"):
                failures.append(f"{page}: requested from another host: {resource}")
        for href in info["links"]:
            if href not in checked_links:
                checked_links[href] = _check_link(site, href, page)
            if checked_links[href]:
                failures.append(checked_links[href])
        for text in info["unrenderedMath"]:
            failures.append(f"{page}: math not rendered by MathJax: {text!r}")
        for text in info["texts"]:
            match = RAW_TEX.search(text)
            if match:
                failures.append(f"{page}: raw TeX in the text: {text.strip()[:80]!r}")
        if _source_has_math(root, page):
            if info["rendered"] == 0:
                failures.append(f"{page}: its source has math but the page shows no MathJax "
                                "output")
            else:
                rendered_pages += 1
    assert not failures, f"{len(failures)} problems in {len(pages)} pages:\n" + \
        "\n".join(dict.fromkeys(failures))
    # the check is not vacuous: the README and the method notes hold links, some page has math
    assert len(checked_links) > 20
    assert rendered_pages >= 1, "no page with math in its source was found"


def _documented_members(module_name: str) -> list[str]:
    """Public functions and classes defined in a module that have a docstring of their own:
    what autodoc's ``:members:`` must show on the module's page."""
    module = importlib.import_module(module_name)
    return [f"{module_name}.{name}" for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
            and getattr(obj, "__module__", None) == module_name and obj.__doc__]


def test_api_reference_has_a_page_per_science_module(site, browser):
    root, origin = site["root"], site["origin"]
    modules = book.api_modules(paths.root())
    assert len(modules) >= 10, modules
    browser.get(f"{origin}/api/index.html")
    linked = browser.execute_script(
        "return Array.from(document.querySelectorAll('article a[href]'))"
        ".map(a => a.getAttribute('href'));")
    failures = [f"api/index.html does not link {m}.html" for m in modules
                if not any(h.split("#")[0] == f"{m}.html" for h in linked)]
    documented = 0
    for module in modules:
        page = f"api/{module}.html"
        if not (root / page).is_file():
            failures.append(f"no page {page}")
            continue
        browser.get(f"{origin}/{page}")
        info = browser.execute_script(
            "return {h1: (document.querySelector('article h1') || {}).textContent || '',"
            " ids: Array.from(document.querySelectorAll('dt.sig[id]')).map(e => e.id)};")
        if module not in info["h1"]:
            failures.append(f"{page}: title {info['h1']!r} does not name {module}")
        missing = [m for m in _documented_members(module) if m not in info["ids"]]
        if missing:
            failures.append(f"{page}: documented members not shown: {missing}")
        documented += len(info["ids"])
    assert not failures, "\n".join(failures)
    # the pages hold the docstrings, not just titles: modlib documents well over 100 objects
    assert documented > 100, documented


def test_search_finds_a_term_offline(site, browser):
    browser.get(f"{site['origin']}/search.html?q=modularity")
    results = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const t0 = Date.now();
        (function poll() {
          const items = document.querySelectorAll('#search-results li, ul.search li');
          const summary = document.querySelector(
              '#search-results .search-summary, p.search-summary');
          if (items.length || (summary && Date.now() - t0 > 2000) || Date.now() - t0 > 20000) {
            done(Array.from(items).map(li => li.textContent.trim().slice(0, 80)));
          } else { setTimeout(poll, 200); }
        })();
    """)
    assert results, "the search page found no page for 'modularity'"


def test_screenshots(site, browser):
    root = site["root"]
    out = root.parent.parent   # build/book/
    shots = {"screenshot_landing.png": "index.html"}
    notebook_05 = sorted(root.glob("notebooks/05_*.html"))
    if notebook_05:
        shots[f"screenshot_{notebook_05[0].stem}.png"] = \
            notebook_05[0].relative_to(root).as_posix()
    for name, page in shots.items():
        browser.get(f"{site['origin']}/{page}")
        browser.execute_async_script(_SETTLE)
        browser.execute_script("window.scrollTo(0, 0)")
        browser.set_window_size(1280, 1400)
        assert browser.save_screenshot(str(out / name)), name
        assert (out / name).stat().st_size > 10_000, f"{name} looks empty"
        # and, for a notebook, its first figure in the page
        if page.startswith("notebooks/") and browser.execute_script(
                "const img = document.querySelector('.cell_output img');"
                "if (img) { img.scrollIntoView(); window.scrollBy(0, -200); }"
                "return Boolean(img);"):
            figure = name.replace(".png", "_figure.png")
            assert browser.save_screenshot(str(out / figure)), figure
    browser.set_window_size(1280, 900)
    assert notebook_05, "the book has no page for notebook 05"
