"""`make demo` keeps working: the demo script runs end to end and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_runs_end_to_end() -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CLERK_")}
    result = subprocess.run(
        [sys.executable, "examples/demo.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    expected_lines = (
        "-> 201",
        "ok: 401 session-token-missing",
        "ok: 401 token-expired",
        "ok: 401 token-invalid-signature",
        "ok: 401 token-invalid-authorized-parties",
        "ok: one record, attributed to the user",
        "| fix: Clerk session tokens live 60 s",
        "Demo finished",
    )
    for expected in expected_lines:
        assert expected in result.stdout
    assert "FAILED" not in result.stdout
