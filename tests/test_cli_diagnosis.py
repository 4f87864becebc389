"""`clerk-deps` as a new user meets it: help, issuer mistakes, hostile tokens, the emulator.

Every command runs as a real process against FakeClerk on 127.0.0.1 (or in process where
only the output matters), as a user would run it.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_process import emulator_process

from clerk_deps.cli import main, run_emulator
from clerk_deps.testing import TestIssuer
from clerk_deps.testing.fakeclerk import FakeClerk

SUBCOMMANDS = ["doctor", "verify", "jwks-to-pem", "token", "call", "emulator"]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeClerk]:
    with FakeClerk().serve() as fake:
        yield fake


@pytest.fixture
def env(fake: FakeClerk) -> dict[str, str]:
    return fake.env_vars()


def run(
    args: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("CLERK_")}
    return subprocess.run(
        [sys.executable, "-m", "clerk_deps", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


Runner = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(params=["process", "in-process"])
def cli(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Runner:
    """Run the command as a real process, or through main() in this one (measured by coverage)."""
    if request.param == "process":
        return run

    def in_process(
        args: list[str], env: dict[str, str], cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        with monkeypatch.context() as patch:
            for name in [n for n in os.environ if n.upper().startswith("CLERK_")]:
                patch.delenv(name)
            for name, value in env.items():
                patch.setenv(name, value)
            patch.chdir(cwd or tmp_path)
            out = io.StringIO()
            capsys.readouterr()
            code = main(args, out=out)
        return subprocess.CompletedProcess(args, code, out.getvalue(), capsys.readouterr().err)

    return in_process


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: dict[str, Any] | bytes, payload: dict[str, Any] | bytes) -> str:
    parts = [p if isinstance(p, bytes) else json.dumps(p).encode() for p in (header, payload)]
    return ".".join([b64url(parts[0]), b64url(parts[1]), b64url(b"not a signature")])


def session_token(fake: FakeClerk, **claims: Any) -> str:
    user = fake.create_user()
    return fake.session_token(fake.create_session(user["id"])["id"], **claims)


def one_line_error(result: subprocess.CompletedProcess[str], command: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"clerk-deps {command}: "), result.stderr
    return lines[0]


# -- --help says what each subcommand does and what it needs -------------------------------

NEEDS = {
    "doctor": ["CLERK_ISSUER", "CLERK_PUBLISHABLE_KEY", "--token"],
    "verify": ["CLERK_ISSUER", "CLERK_PUBLISHABLE_KEY", "stdin"],
    "jwks-to-pem": ["CLERK_JWKS_URL", "CLERK_SECRET_KEY", "CLERK_JWT_KEY"],
    "token": ["CLERK_SECRET_KEY", "CLERK_API_URL", "no such user"],
    "call": ["CLERK_SECRET_KEY", "CLERK_API_URL", "cannot expire"],
    "emulator": ["127.0.0.1", "test user", "clerk-deps[testing]"],
}


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_says_what_it_does_and_what_it_needs(command: str) -> None:
    result = run([command, "--help"], {})
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # argparse wraps lines
    for needed in NEEDS[command]:
        assert needed in text, f"{command} --help does not mention {needed}"


def test_top_level_help_lists_every_subcommand() -> None:
    result = run(["--help"], {})
    assert all(command in result.stdout for command in SUBCOMMANDS)


# -- issuers that can never match ------------------------------------------------------------


@pytest.mark.parametrize(
    "issuer",
    [
        "https://clean-fox-12.clerk.accounts.dev/.well-known/jwks.json",
        "https://clean-fox-12.clerk.accounts.dev/.well-known/jwks.json/",
    ],
)
def test_doctor_flags_a_pasted_key_set_url(cli: Runner, issuer: str, tmp_path: Path) -> None:
    line = one_line_error(cli(["doctor"], {"CLERK_ISSUER": issuer}, tmp_path), "doctor")
    assert "CLERK_ISSUER: is a key set URL; drop the path" in line


def test_doctor_flags_an_issuer_with_a_path(
    cli: Runner, fake: FakeClerk, env: dict[str, str]
) -> None:
    configured = {**env, "CLERK_ISSUER": f"{fake.base_url}/tenant"}
    result = cli(["doctor"], configured)
    one_line_error(result, "doctor")
    assert "problem: CLERK_ISSUER has a path ('/tenant')" in result.stdout
    assert f"drop the path (CLERK_ISSUER={fake.base_url})" in result.stdout


def test_doctor_token_says_to_drop_the_issuer_path(
    cli: Runner, fake: FakeClerk, env: dict[str, str]
) -> None:
    configured = {
        **env,
        "CLERK_ISSUER": f"{fake.base_url}/tenant",
        "CLERK_JWKS_URL": f"{fake.base_url}/.well-known/jwks.json",
    }
    result = cli(["doctor", "--token", session_token(fake)], configured)
    one_line_error(result, "doctor")
    assert f"drop the path from CLERK_ISSUER: set CLERK_ISSUER={fake.base_url}" in result.stdout


# -- --token: the token's iss against the configured issuer ---------------------------------


def test_doctor_token_from_another_instance_says_which_to_change(
    cli: Runner, fake: FakeClerk, env: dict[str, str]
) -> None:
    configured = {
        **env,
        "CLERK_ISSUER": "https://clean-fox-12.clerk.accounts.dev",
        "CLERK_JWKS_URL": f"{fake.base_url}/.well-known/jwks.json",
    }
    result = cli(["doctor", "--token", session_token(fake)], configured)
    one_line_error(result, "doctor")
    problems = [line for line in result.stdout.splitlines() if line.startswith("problem:")]
    assert len(problems) == 1, result.stdout  # the refusal is not reported twice
    assert f"token iss '{fake.base_url}' does not match" in problems[0]
    assert "another Clerk instance than the app trusts (development)" in problems[0]
    assert f"change CLERK_ISSUER to {fake.base_url}" in problems[0]
    assert "publishable key" in problems[0]


def test_doctor_token_with_a_slash_in_iss_blames_the_token(
    cli: Runner, fake: FakeClerk, env: dict[str, str]
) -> None:
    token = session_token(fake, iss=fake.base_url + "/")
    result = cli(["doctor", "--token", token], env)
    one_line_error(result, "doctor")
    assert "CLERK_ISSUER is right" in result.stdout
    assert "fix whatever minted this token" in result.stdout


def test_doctor_token_matching_issuer_is_said_so(
    cli: Runner, fake: FakeClerk, env: dict[str, str]
) -> None:
    result = cli(["doctor", "--token", session_token(fake)], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "iss matches the configured issuer" in result.stdout
    assert "valid for" in result.stdout


def test_doctor_token_without_issuer_suggests_setting_it(
    cli: Runner, fake: FakeClerk, tmp_path: Path
) -> None:
    result = cli(
        ["doctor", "--token", session_token(fake)], {"CLERK_JWT_KEY": fake.public_pem}, tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CLERK_ISSUER is not set, so iss is not checked; to check it, set " in result.stdout
    assert f"CLERK_ISSUER={fake.base_url}" in result.stdout


# -- hostile tokens: no terminal escapes, no traceback ---------------------------------------

HOSTILE = "\x1b[2J\x1b]0;owned\x07\u202eevil\u2028\x9b31m\\"


def forbidden_characters(text: str) -> set[str]:
    return {c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")}


def test_doctor_escapes_control_characters_of_unverified_values(
    cli: Runner, fake: FakeClerk, env: dict[str, str]
) -> None:
    token = raw_token(
        {"alg": HOSTILE, "kid": HOSTILE, "typ": "JWT"},
        {"iss": HOSTILE, "sub": HOSTILE, "exp": 1, "iat": 1},
    )
    result = cli(["doctor", "--token", token], env)
    one_line_error(result, "doctor")
    assert forbidden_characters(result.stdout + result.stderr) == set()
    assert "\\x1b[2J\\x1b]0;owned\\x07\\u202eevil\\u2028\\x9b31m\\\\" in result.stdout


def test_doctor_escapes_a_hostile_but_validly_signed_token(cli: Runner, tmp_path: Path) -> None:
    issuer = TestIssuer(issuer="https://clean-fox-12.clerk.accounts.dev")
    configured = {"CLERK_ISSUER": issuer.issuer, "CLERK_JWT_KEY": issuer.public_pem}
    token = issuer.token("user_" + HOSTILE, iss=issuer.issuer + HOSTILE)
    result = cli(["doctor", "--token", token], configured, tmp_path)
    one_line_error(result, "doctor")
    assert forbidden_characters(result.stdout + result.stderr) == set()
    assert "\\x1b[2J" in result.stdout


def test_verify_escapes_the_refusal_message(
    cli: Runner, fake: FakeClerk, env: dict[str, str]
) -> None:
    token = session_token(fake, iss="https://x.clerk.accounts.dev" + HOSTILE)
    result = cli(["verify", token], env)
    one_line_error(result, "verify")
    assert "rejected: token-invalid-issuer" in result.stdout
    assert forbidden_characters(result.stdout + result.stderr) == set()


def test_long_unverified_values_are_cut(cli: Runner, fake: FakeClerk, env: dict[str, str]) -> None:
    token = raw_token({"alg": "RS256", "kid": "k" * 5000}, {"iss": "i", "sub": "s"})
    result = cli(["doctor", "--token", token], env)
    one_line_error(result, "doctor")
    assert "k" * 200 + "... (cut)" in result.stdout and "k" * 201 not in result.stdout


@pytest.mark.parametrize("part", ["header", "payload"])
@pytest.mark.parametrize("command", ["doctor", "verify"])
def test_deeply_nested_token_is_one_line_not_a_traceback(
    cli: Runner, fake: FakeClerk, env: dict[str, str], part: str, command: str
) -> None:
    nested = b"[" * 5000 + b"]" * 5000
    header = {"alg": "RS256", "kid": fake.kid, "typ": "JWT"}
    token = raw_token(nested, {"sub": "x"}) if part == "header" else raw_token(header, nested)
    args = ["doctor", "--token", token] if command == "doctor" else ["verify", token]
    result = cli(args, env)
    one_line_error(result, command)
    assert "token-invalid" in result.stdout


def test_doctor_notes_slash_audience_and_a_token_without_iss(
    cli: Runner, fake: FakeClerk, env: dict[str, str]
) -> None:
    configured = {**env, "CLERK_ISSUER": fake.base_url + "/", "CLERK_AUDIENCE": "\x1b[31m"}
    token = raw_token({"alg": "RS256", "kid": fake.kid}, {"sub": "user_1", "iss": None})
    result = cli(["doctor", "--token", token], configured)
    one_line_error(result, "doctor")
    assert "CLERK_ISSUER has a trailing slash; it is stripped" in result.stdout
    assert "audience '\\x1b[31m' is set" in result.stdout
    assert "the token has no iss string" in result.stdout
    assert forbidden_characters(result.stdout) == set()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "(none)"),
        ({"a": 1}, "(an object)"),
        ([1], "(a list)"),
        (True, "true"),
        (3, "3"),
        ("a\x00b\u200bc\\", "a\\x00b\\u200bc\\\\"),
    ],
)
def test_shown_values(value: object, expected: str) -> None:
    from clerk_deps.cli._common import shown

    assert shown(value) == expected


def test_recursion_anywhere_is_still_one_line(
    fake: FakeClerk,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A fault no real input produces any more (decoding catches it): the last line of defence.
    async def too_deep(*args: object, **kwargs: object) -> None:
        raise RecursionError

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("clerk_deps.cli.verify.authenticate", too_deep)
    assert main(["verify", "a.b.c"], out=io.StringIO()) == 1
    assert capsys.readouterr().err == "clerk-deps verify: input nested too deeply to read\n"


# -- the emulator hands out a ready user -----------------------------------------------------


def test_emulator_prints_a_ready_test_user() -> None:
    out = io.StringIO()
    checked: list[int] = []

    def check() -> None:
        text = out.getvalue()
        variables = dict(
            line.split("=", 1) for line in text.splitlines() if line.startswith("CLERK_")
        )
        user_id = next(
            line.split()[2] for line in text.splitlines() if line.startswith("Test user: ")
        )
        assert f"clerk-deps token {user_id}" in text
        assert f"--user {user_id}" in text
        answer = httpx.get(
            f"{variables['CLERK_API_URL']}/v1/users/{user_id}",
            headers={"Authorization": f"Bearer {variables['CLERK_SECRET_KEY']}"},
        )
        checked.append(answer.status_code)
        assert answer.json()["email_addresses"][0]["email_address"] == "you@example.com"

    assert run_emulator(0, out, check) == 0
    assert checked == [200]


def test_emulator_user_gets_a_token_from_the_token_command(tmp_path: Path) -> None:
    with emulator_process(tmp_path) as emulator:
        lines = emulator.read_until(lambda line: line.startswith("  clerk-deps token "))
        user_id = lines[-1].split()[-1]
        variables = emulator.variables
        minted = run(["token", user_id], variables, tmp_path)
        assert minted.returncode == 0, minted.stderr
        verified = run(["verify", minted.stdout.strip()], variables, tmp_path)
        assert verified.returncode == 0, verified.stderr
        assert json.loads(verified.stdout[: verified.stdout.rindex("}") + 1])["sub"] == user_id
