"""Shared fixtures: every test starts with no CLERK_* variables, no cached settings and no
cached key sources, so tests never depend on the developer's own environment or order."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from clerk_deps import get_settings
from clerk_deps.keys import clear_key_sources


@pytest.fixture(autouse=True)
def _isolated_clerk_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.upper().startswith("CLERK_"):
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    clear_key_sources()
    yield
    get_settings.cache_clear()
    clear_key_sources()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly when the browser tests could not run, and how to make them run."""
    from browser_support import SKIP_PREFIX

    reasons = {
        str(report.longrepr[2]).removeprefix("Skipped: ")
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and SKIP_PREFIX in str(report.longrepr[2])
    }
    for reason in sorted(reasons):
        terminalreporter.write_sep("!", reason.upper().split(":", 1)[0], yellow=True)
        terminalreporter.write_line(reason)
