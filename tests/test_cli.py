"""The `clerk-deps` command against FakeClerk on 127.0.0.1: success, failure, exit codes."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_process import emulator_process
from fastapi import FastAPI

from clerk_deps import CurrentUserDep, verify_token
from clerk_deps.cli import ADVICE, main, run_emulator
from clerk_deps.errors import ErrorReason
from clerk_deps.testing import TestIssuer
from clerk_deps.testing.fakeclerk import FakeClerk
from clerk_deps.testing.server import serve_app

CONSOLE_SCRIPT = Path(sys.executable).with_name("clerk-deps")


@pytest.fixture
def fake() -> Iterator[FakeClerk]:
    with FakeClerk().serve() as fake:
        yield fake


@pytest.fixture
def user(fake: FakeClerk) -> dict[str, Any]:
    return fake.create_user(email_address="cli@example.com")


@pytest.fixture
def configured(fake: FakeClerk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The process environment of an app trusting ``fake``, in an empty working directory."""
    monkeypatch.chdir(tmp_path)
    env = fake.env_vars()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("CLERK_")}
    return subprocess.run(
        [sys.executable, "-m", "clerk_deps", *args],
        input=stdin,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def call_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = io.StringIO()
    code = main(args, out=out)
    return code, out.getvalue(), capsys.readouterr().err


def session_token(fake: FakeClerk, user_id: str, **claims: Any) -> str:
    return fake.session_token(fake.create_session(user_id)["id"], **claims)


# -- every subcommand, as a real process ---------------------------------------------------


@pytest.mark.parametrize(
    "command", ["doctor", "verify", "jwks-to-pem", "token", "call", "emulator"]
)
def test_each_subcommand_has_help(command: str) -> None:
    result = run([command, "--help"], {})
    assert result.returncode == 0
    assert f"usage: clerk-deps {command}" in result.stdout


def test_console_script_is_installed() -> None:
    result = subprocess.run([str(CONSOLE_SCRIPT), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "doctor" in result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    assert run(["frobnicate"], {}).returncode == 2


def test_token_prints_only_a_verifiable_token(
    fake: FakeClerk, user: dict[str, Any], configured: dict[str, str]
) -> None:
    result = run(["token", user["id"], "--expires-in", "120"], configured)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.count(".") == 2 and "\n" not in token
    claims = asyncio.run(verify_token(token, fake.settings()))
    assert claims.sub == user["id"] and claims.exp - claims.iat == 120


def test_token_for_unknown_user_fails_with_one_line(configured: dict[str, str]) -> None:
    result = run(["token", "user_nobody"], configured)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no such user 'user_nobody'" in lines[0]


def test_verify_valid_token_from_stdin(
    fake: FakeClerk, user: dict[str, Any], configured: dict[str, str]
) -> None:
    token = session_token(fake, user["id"])
    result = run(["verify", "-"], configured, stdin=token + "\n")
    assert result.returncode == 0, result.stderr
    claims = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    assert claims["sub"] == user["id"]
    assert "s left" in result.stdout
    assert token not in result.stdout + result.stderr


def test_verify_expired_token_gives_the_fix(
    fake: FakeClerk, user: dict[str, Any], configured: dict[str, str]
) -> None:
    expired = session_token(fake, user["id"], now=1_700_000_000)
    result = run(["verify", expired], configured)
    assert result.returncode == 1
    assert "rejected: token-expired" in result.stdout
    assert f"fix: {ADVICE[ErrorReason.TOKEN_EXPIRED]}" in result.stdout
    assert result.stderr.strip() == "clerk-deps verify: token rejected (token-expired)"


def test_doctor_healthy(fake: FakeClerk, configured: dict[str, str]) -> None:
    result = run(["doctor"], configured)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"kid {fake.kid}" in result.stdout
    assert "ok: this configuration verifies" in result.stdout
    assert fake.secret_key not in result.stdout + result.stderr


def test_doctor_finds_problems(configured: dict[str, str]) -> None:
    broken = {**configured, "CLERK_ISSUER": configured["CLERK_ISSUER"] + "/", "CLERK_AUDIENCE": "x"}
    broken["CLERK_JWKS_URL"] = "http://127.0.0.1:9/jwks.json"  # nothing listens on port 9
    result = run(["doctor"], broken)
    assert result.returncode == 1
    assert "trailing slash" in result.stdout
    assert "every session token will be rejected" in result.stdout
    assert "not reachable" in result.stdout
    assert result.stderr.strip().endswith("problem(s) found; see above")


def test_emulator_serves_and_stops(tmp_path: Path) -> None:
    with emulator_process(tmp_path, "--port", "0") as emulator:
        emulator.read_until(lambda line: line.startswith("CLERK_SECRET_KEY="))
        issuer = emulator.variables["CLERK_ISSUER"]
        keys = httpx.get(issuer + "/.well-known/jwks.json").json()["keys"]
        assert keys and keys[0]["kty"] == "RSA"
    assert emulator.process.returncode == 0


# -- the same commands in process (fast; also measured by coverage) -------------------------


def test_doctor_with_token_in_process(
    fake: FakeClerk,
    user: dict[str, Any],
    configured: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = session_token(fake, user["id"])
    code, out, _ = call_main(["doctor", "--token", good], capsys)
    assert code == 0 and "valid for" in out and f"sub {user['id']}" in out
    forged = TestIssuer(issuer=fake.base_url, kid=fake.kid).forged_token(user["id"])
    code, out, _err = call_main(["doctor", "--token", forged], capsys)
    assert code == 1 and "token-invalid-signature" in out and "jwks-to-pem" in out


def test_doctor_static_key_and_odd_host(
    fake: FakeClerk,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CLERK_ISSUER=https://auth.example.com\n")
    monkeypatch.setenv("CLERK_JWT_KEY", fake.public_pem)
    code, out, _ = call_main(["doctor"], capsys)
    assert code == 0
    assert "dotenv files read: .env" in out
    assert "static PEM" in out
    assert "does not look like a Clerk Frontend API host" in out


def test_doctor_unconfigured_and_invalid(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = call_main(["doctor"], capsys)
    assert code == 1 and "key source:        (none)" in out
    monkeypatch.setenv("CLERK_ISSUER", "http://insecure.example")
    code, out, err = call_main(["doctor"], capsys)
    assert code == 1 and "CLERK_ISSUER" in err and len(err.strip().splitlines()) == 1


def test_doctor_empty_key_set(
    fake: FakeClerk, configured: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    app = FastAPI()

    @app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        return {"keys": []}

    with serve_app(app) as url:
        os.environ["CLERK_JWKS_URL"] = f"{url}/jwks"
        try:
            code, out, _ = call_main(["doctor"], capsys)
        finally:
            del os.environ["CLERK_JWKS_URL"]
    assert code == 1 and "holds no usable RS256 signing key" in out


def test_verify_in_process(
    fake: FakeClerk,
    user: dict[str, Any],
    configured: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, _ = call_main(["verify", session_token(fake, user["id"])], capsys)
    assert code == 0 and user["id"] in out
    monkeypatch.setattr(sys, "stdin", io.StringIO("   "))
    code, _, err = call_main(["verify"], capsys)
    assert code == 1 and "no token given" in err


def test_jwks_to_pem(
    fake: FakeClerk, configured: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = call_main(["jwks-to-pem"], capsys)
    assert code == 0
    assert out.startswith(f"# kid: {fake.kid}\n-----BEGIN PUBLIC KEY-----")
    assert out.strip().endswith("-----END PUBLIC KEY-----")
    assert fake.public_pem.strip() in out
    code, out, _ = call_main(
        ["jwks-to-pem", "--url", f"{fake.base_url}/.well-known/jwks.json", "--kid", fake.kid],
        capsys,
    )
    assert code == 0 and fake.public_pem.strip() in out
    code, _, err = call_main(["jwks-to-pem", "--kid", "nope"], capsys)
    assert code == 1 and "'nope'" in err


def test_jwks_to_pem_backend_api_and_errors(
    fake: FakeClerk,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = call_main(["jwks-to-pem"], capsys)
    assert code == 1 and "no key set URL" in err
    monkeypatch.setenv("CLERK_SECRET_KEY", fake.secret_key)
    monkeypatch.setenv("CLERK_API_URL", fake.base_url)
    code, out, _ = call_main(["jwks-to-pem"], capsys)  # {api_url}/v1/jwks with the secret
    assert code == 0 and fake.public_pem.strip() in out
    monkeypatch.setenv("CLERK_SECRET_KEY", "sk_test_wrong")
    code, _, err = call_main(["jwks-to-pem"], capsys)
    assert code == 1 and "HTTP 401" in err and "sk_test_wrong" not in err
    code, _, err = call_main(["jwks-to-pem", "--url", "http://127.0.0.1:9/jwks"], capsys)
    assert code == 1 and "ConnectError" in err


def test_token_options_in_process(
    fake: FakeClerk,
    user: dict[str, Any],
    configured: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake.add_jwt_template("backend", claims={"aud": "backend"})
    code, out, _ = call_main(["token", user["id"], "--template", "backend"], capsys)
    assert code == 0
    header = json.loads(base64.urlsafe_b64decode(out.split(".")[0] + "=="))
    assert header["cat"] == "cl_B7d4PD222AAA"
    monkeypatch.delenv("CLERK_SECRET_KEY")
    code, _, err = call_main(["token", user["id"]], capsys)
    assert code == 1 and "CLERK_SECRET_KEY" in err


def test_call_mints_and_calls_at_once(
    fake: FakeClerk,
    user: dict[str, Any],
    configured: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = FastAPI()

    @app.post("/jobs", status_code=201)
    async def create(body: dict[str, Any], who: CurrentUserDep) -> dict[str, Any]:
        return {"by": who.sub, "got": body}

    @app.get("/forbidden")
    async def forbidden() -> None:
        from fastapi import HTTPException

        raise HTTPException(403, "no")

    with serve_app(app) as url:
        code, out, _ = call_main(
            ["call", f"{url}/jobs", "--user", user["id"], "--method", "post", "--data", '{"a": 1}'],
            capsys,
        )
        assert code == 0
        assert out.startswith("HTTP 201\n")
        assert json.loads(out.split("\n", 1)[1]) == {"by": user["id"], "got": {"a": 1}}
        code, out, err = call_main(["call", f"{url}/forbidden", "--user", user["id"]], capsys)
        assert code == 1 and out.startswith("HTTP 403") and "answered HTTP 403" in err
    code, _, err = call_main(["call", f"{url}/jobs", "--user", user["id"]], capsys)
    assert code == 1 and "ConnectError" in err
    code, _, err = call_main(["call", "http://x", "--user", user["id"], "--data", "{"], capsys)
    assert code == 1 and "--data is not valid JSON" in err


def test_run_emulator_in_process() -> None:
    out = io.StringIO()
    seen: list[int] = []

    def check() -> None:
        variables = dict(
            line.split("=", 1) for line in out.getvalue().splitlines() if line.startswith("CLERK_")
        )
        response = httpx.get(
            variables["CLERK_API_URL"] + "/v1/jwks",
            headers={"Authorization": f"Bearer {variables['CLERK_SECRET_KEY']}"},
        )
        seen.append(response.status_code)

    assert run_emulator(0, out, check) == 0
    assert seen == [200]


def test_every_reason_has_advice() -> None:
    assert set(ADVICE) == set(ErrorReason)
