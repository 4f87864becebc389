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
        stdin=subprocess.DEVNULL,  # not a terminal: the demo does not wait at the browser page
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
        "Browser page: http://127.0.0.1:",
        "ok: the page is served",
        "ok: the signed webhook was verified by the API",
        "ok: 401 session-revoked",
        "Demo finished",
    )
    for expected in expected_lines:
        assert expected in result.stdout
    assert "FAILED" not in result.stdout


def test_make_run_serves_the_api_with_fakeclerk(tmp_path: Path) -> None:
    """`make run` without configuration: FakeClerk plus the API, and the printed commands work."""
    import signal
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CLERK_")}
    env["PORT"] = str(port)
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "examples/serve.py")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not any("Uvicorn running" in line for line in lines):
            line = process.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        exports = next(line for line in lines if line.strip().startswith("export "))
        call = next(line for line in lines if "/jobs --user" in line)
        cli_env = {**env, **dict(v.split("=", 1) for v in exports.split()[1:])}
        args = call.split("clerk-deps ", 1)[1].strip()
        result = subprocess.run(
            f"{sys.executable} -m clerk_deps {args}",
            shell=True,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("HTTP 201")
        assert '"created_by_email":"you@example.com"' in result.stdout
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0
