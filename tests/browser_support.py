"""Headless Chromium for the browser tests: Debian's `chromium`, driven by Playwright.

Playwright's own browser download is never used (it cannot run on CI's closed network):
Playwright launches the system Chromium at ``CHROMIUM`` with the flags this machine needs.
Without Chromium or Playwright, the browser tests skip with a reason that starts with
``SKIP_PREFIX``, and the test session's summary says how to install what is missing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

SKIP_PREFIX = "browser tests skipped"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # no calls home on a closed network
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    return found if found and os.access(found, os.X_OK) else None


def missing_reason() -> str | None:
    if chromium_path() is None:
        return f"{SKIP_PREFIX}: Chromium is not installed (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return f"{SKIP_PREFIX}: playwright is not installed (pip install -e '.[dev]')"
    return None


def require_browser() -> None:
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (a Playwright ``Browser``) for the block."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()
