"""`clerk-deps verify` names machine tokens; `clerk-deps token --type` creates them (FakeClerk)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from clerk_deps.cli import main
from clerk_deps.machine_verify import clear_verifiers
from clerk_deps.testing.fakeclerk import FakeClerk


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClerk]:
    clear_verifiers()
    monkeypatch.chdir(tmp_path)
    with FakeClerk().serve() as fake:
        for name, value in fake.env_vars().items():
            monkeypatch.setenv(name, value)
        yield fake
    clear_verifiers()


def call_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = io.StringIO()
    code = main(args, out=out)
    return code, out.getvalue(), capsys.readouterr().err


def test_verify_names_an_api_key(fake: FakeClerk, capsys: pytest.CaptureFixture[str]) -> None:
    key = fake.create_api_key("org_1", scopes=["read"])
    code, out, _ = call_main(["verify", key["secret"]], capsys)
    assert code == 0
    assert out.startswith("type: api_key\n")
    shown = json.loads(out.split("\n", 1)[1].rsplit("valid:", 1)[0])
    assert shown["id"] == key["id"] and shown["subject"] == "org_1"
    assert key["secret"] not in out
    assert "valid: no expiry" in out


def test_verify_names_jwt_m2m_and_oauth(
    fake: FakeClerk, capsys: pytest.CaptureFixture[str]
) -> None:
    jwt = fake.create_m2m_token(token_format="jwt")["token"]
    code, out, _ = call_main(["verify", jwt], capsys)
    assert code == 0 and out.startswith("type: m2m_token\n") and " s left" in out
    oauth = fake.create_oauth_token()["token"]
    code, out, _ = call_main(["verify", oauth], capsys)
    assert code == 0 and out.startswith("type: oauth_token\n")


def test_verify_a_revoked_key_gives_the_fix(
    fake: FakeClerk, capsys: pytest.CaptureFixture[str]
) -> None:
    key = fake.create_api_key()
    fake.revoke_machine_token(key["id"])
    code, out, err = call_main(["verify", key["secret"]], capsys)
    assert code == 1
    assert "rejected: token-revoked" in out and "fix: " in out
    assert "token-revoked" in err


def test_token_creates_an_api_key_that_verifies(
    fake: FakeClerk, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = call_main(
        ["token", "--type", "api_key", "org_5", "--scope", "read", "--scope", "write"], capsys
    )
    assert code == 0
    secret = out.strip()
    assert secret.startswith("ak_")
    answer = fake.verify_machine_token("ak", secret)
    assert answer["subject"] == "org_5" and answer["scopes"] == ["read", "write"]
    assert answer["name"] == "clerk-deps"


def test_token_creates_an_m2m_token(
    fake: FakeClerk, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLERK_MACHINE_SECRET_KEY", fake.machine_secret_key)
    code, out, _ = call_main(["token", "--type", "m2m_token", "--expires-in", "600"], capsys)
    assert code == 0
    answer = fake.verify_machine_token("mt", out.strip())
    assert answer["subject"] == fake.machine_id and answer["expiration"] is not None
    code, out, _ = call_main(["verify", out.strip()], capsys)
    assert code == 0 and out.startswith("type: m2m_token\n")


def test_token_arguments_that_cannot_work(
    fake: FakeClerk, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = call_main(["token", "--type", "api_key"], capsys)
    assert code == 1 and "SUBJECT" in err
    code, _, err = call_main(["token"], capsys)
    assert code == 1 and "USER_ID" in err
    code, _, err = call_main(["token", "--type", "api_key", "mch_1"], capsys)
    assert code == 1 and "could not create the api_key" in err
    monkeypatch.delenv("CLERK_SECRET_KEY")
    code, _, err = call_main(["token", "--type", "m2m_token"], capsys)
    assert code == 1 and "CLERK_MACHINE_SECRET_KEY" in err
