"""Shared fixtures: every test starts with no CLERK_* variables, no cached settings and no
cached key sources, so tests never depend on the developer's own environment or order."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from clerk_deps import get_settings
from clerk_deps.keys import clear_key_sources
from clerk_deps.machine_cache import use_shared_verdicts
from clerk_deps.machine_verify import clear_verifiers
from clerk_deps.revocation import clear_revocations
from clerk_deps.session_status import clear_status_checkers
from clerk_deps.store import clear_stores


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


def _forget_machine_state() -> None:
    clear_verifiers()
    clear_stores()
    use_shared_verdicts(None)


@pytest.fixture
def fresh_machine_state() -> Iterator[None]:
    """No opaque-token verifiers (verdicts, budgets), stores or plugged-in shared verdicts
    before or after the test. Use it with ``pytest.mark.usefixtures("fresh_machine_state")``."""
    _forget_machine_state()
    yield
    _forget_machine_state()


def _forget_revocation_state() -> None:
    clear_revocations()
    clear_stores()
    clear_status_checkers()


@pytest.fixture
def fresh_revocation_state() -> Iterator[None]:
    """No revocations, stores or session-status checkers before or after the test. Use it
    with ``pytest.mark.usefixtures("fresh_revocation_state")``."""
    _forget_revocation_state()
    yield
    _forget_revocation_state()


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
