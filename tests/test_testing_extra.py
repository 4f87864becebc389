"""The `testing` extra: what it installs, and one clear line when it is missing.

A missing uvicorn cannot be produced in this virtualenv (the dev extra installs it), so the
fault is simulated the way Python reports it: ``sys.modules["uvicorn"] = None`` makes
``import uvicorn`` raise ImportError.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest
from fastapi import FastAPI
from packaging.requirements import Requirement

from clerk_deps import ClerkAuthError
from clerk_deps.cli import main
from clerk_deps.testing import FakeClerk, TestingExtraMissing, serve_app

INSTALL = "pip install 'clerk-deps[testing]'"


def extra_requirements(extra: str) -> set[str]:
    names = set()
    for line in importlib.metadata.requires("clerk-deps") or []:
        requirement = Requirement(line)
        if requirement.marker and requirement.marker.evaluate({"extra": extra}):
            names.add(requirement.name)
    return names


def test_testing_extra_brings_pytest_and_uvicorn() -> None:
    assert {"pytest", "uvicorn"} <= extra_requirements("testing")
    assert extra_requirements("testing") <= extra_requirements("dev")


@pytest.fixture
def no_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)


def check_message(error: BaseException) -> None:
    assert isinstance(error, ImportError) and not isinstance(error, ClerkAuthError)
    message = str(error)
    assert "\n" not in message and message.endswith(INSTALL) and "uvicorn" in message


@pytest.mark.usefixtures("no_uvicorn")
def test_serve_app_without_the_extra() -> None:
    with pytest.raises(TestingExtraMissing) as error, serve_app(FastAPI()):
        pass
    check_message(error.value)
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_fakeclerk_serve_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeClerk()
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(TestingExtraMissing) as error, fake.serve():
        pass
    check_message(error.value)
    monkeypatch.undo()  # once installed, the same emulator serves
    with fake.serve() as served:
        assert served.base_url.startswith("http://127.0.0.1:")


@pytest.mark.usefixtures("no_uvicorn")
def test_emulator_without_the_extra_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "clerk-deps emulator: the emulator needs uvicorn, which comes with the testing extra: "
        f"{INSTALL}\n"
    )


def test_emulator_without_the_extra_as_a_process() -> None:
    script = (
        "import sys; sys.modules['uvicorn'] = None; "
        "from clerk_deps.cli import main; raise SystemExit(main(['emulator']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert INSTALL in result.stderr
