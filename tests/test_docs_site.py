"""The documentation site as a reader gets it: built by mkdocs, rendered in headless Chromium.

Every page is opened at 1280 px and screenshotted; the screenshot must be exactly as wide as the
window (nothing overflows sideways), no block on the page scrolls sideways, every request the
page makes succeeds, and none goes to another host (the site works offline). The API reference
documents every public name, every field of the claims and every setting; code blocks name no
file of this repository that a pip user does not have.
"""

from __future__ import annotations

import importlib.util
import os
import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import chromium

import clerk_deps
import clerk_deps.testing
from clerk_deps import ClerkClaims, ClerkSettings, MachineAuth
from clerk_deps.testing.server import serve_app

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 1280


def _docs_missing() -> str | None:
    for module in ("mkdocs", "material", "mkdocstrings"):
        if importlib.util.find_spec(module) is None:
            return f"docs site tests skipped: {module} is not installed (pip install -e '.[docs]')"
    try:
        importlib.util.find_spec("mkdocstrings_handlers.python")
    except ModuleNotFoundError:
        return "docs site tests skipped: mkdocstrings-python is not installed (the docs extra)"
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = _docs_missing()
    if missing:
        pytest.skip(missing)
    target = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(target)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return target


def pages(site: Path) -> list[str]:
    found = sorted(p.relative_to(site).as_posix() for p in site.rglob("index.html"))
    return [p.removesuffix("index.html") for p in found]


# -- rendered in Chromium ------------------------------------------------------------------


@pytest.fixture(scope="module")
def site_url(site: Path) -> Iterator[str]:
    from starlette.staticfiles import StaticFiles

    with serve_app(StaticFiles(directory=site, html=True), lifespan="off") as url:
        yield url


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


OVERFLOWING = """() => {
  const wide = [];
  for (const element of document.querySelectorAll(".md-content pre, .md-content table")) {
    if (element.scrollWidth > element.clientWidth + 1) {
      wide.push(element.tagName + ": " + element.textContent.trim().slice(0, 60));
    }
  }
  return {page: document.documentElement.scrollWidth, wide};
}"""


def test_every_page_fits_1280_px_and_loads_only_from_the_site(
    site: Path, site_url: str, tmp_path: Path
) -> None:
    problems: list[str] = []
    with chromium() as browser:
        context = browser.new_context(viewport={"width": WIDTH, "height": 900})
        foreign: list[str] = []
        failed: list[str] = []

        def outside(route: Any) -> None:
            foreign.append(route.request.url)
            route.abort()

        context.route(re.compile(r"^(?!http://127\.0\.0\.1[:/]|data:|blob:)"), outside)
        page = context.new_page()
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.on(
            "response",
            lambda response: (
                failed.append(f"{response.status} {response.url}")
                if response.status >= 400
                else None
            ),
        )
        for path in pages(site):
            page.goto(f"{site_url}/{path}", wait_until="networkidle")
            measured = page.evaluate(OVERFLOWING)
            shot = page.screenshot(
                full_page=True, path=tmp_path / f"{path or 'home'}.png".replace("/", "_")
            )
            width, _ = png_size(shot)
            if width != WIDTH or measured["page"] > WIDTH:
                problems.append(f"/{path}: the page is {max(width, measured['page'])} px wide")
            problems += [f"/{path}: scrolls sideways: {what}" for what in measured["wide"]]
        context.close()
    problems += [f"request to another host: {url}" for url in foreign]
    problems += [f"failed request: {url}" for url in failed]
    assert not problems, "\n".join(problems)
    assert len(pages(site)) >= 10


# -- the built HTML ----------------------------------------------------------------------------

REPOSITORY_PATHS = re.compile(r"\b(?:examples[/.]\w|docs/snippets|tests/\w)")


def code_blocks(html: str) -> list[str]:
    blocks = re.findall(r"<pre\b.*?</pre>", html, re.S)
    blocks += re.findall(r'<span class="filename">(.*?)</span>', html, re.S)
    return [re.sub(r"<[^>]+>", "", block) for block in blocks]


def test_code_blocks_name_no_repository_paths(site: Path) -> None:
    found = []
    for path in pages(site):
        for block in code_blocks((site / path / "index.html").read_text()):
            for match in REPOSITORY_PATHS.finditer(block):
                found.append(f"/{path}: {block[max(0, match.start() - 30) : match.end() + 30]!r}")
    assert not found, "\n".join(found)


def reference_html(site: Path) -> str:
    return (site / "reference" / "index.html").read_text()


def exported(package: Any) -> list[tuple[str, str]]:
    return [(name, package._EXPORTS[name]) for name in package.__all__]


@pytest.mark.parametrize(
    ("package", "name", "module"),
    [(clerk_deps, n, m) for n, m in exported(clerk_deps)]
    + [(clerk_deps.testing, n, m) for n, m in exported(clerk_deps.testing)],
)
def test_reference_lists_every_public_name(package: Any, name: str, module: str) -> None:
    directive = f"::: {package.__name__}{module}.{name}"
    text = (ROOT / "docs" / "reference.md").read_text()
    assert re.search(rf"^{re.escape(directive)}$", text, re.M), (
        f"docs/reference.md has no line '{directive}': add the new public name there"
    )


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (ClerkClaims, list(ClerkClaims.model_fields)),
        (MachineAuth, list(MachineAuth.model_fields)),
        (ClerkSettings, list(ClerkSettings.model_fields)),
    ],
)
def test_reference_renders_every_field(site: Path, model: Any, fields: list[str]) -> None:
    html = reference_html(site)
    for field in fields:
        assert (
            f'id="clerk_deps.{model.__module__.split(".")[-1]}.{model.__name__}.{field}"' in html
        ), f"{model.__name__}.{field} is not in the rendered API reference"


def test_diagrams_fit_the_page_without_wrapping() -> None:
    """Long code lines wrap at 1280 px; a ```text diagram (the decision tree) must not, or it
    loses its shape: its lines stay within 80 characters, what the page shows unwrapped."""
    fence = re.compile(r"^```text\n(.*?)^```", re.M | re.S)
    long_lines = [
        f"{markdown.name}: {line}"
        for markdown in sorted((ROOT / "docs").glob("*.md"))
        for block in fence.findall(markdown.read_text())
        for line in block.splitlines()
        if len(line) > 80
    ]
    assert not long_lines, "\n".join(long_lines)
