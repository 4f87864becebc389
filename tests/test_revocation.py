"""Revocation: verified webhook deliveries make verify_token refuse a session at once (cache
hits included), deleted users lose every session, entries are forgotten when their tokens
would have expired anyway, and the backend_api mode asks a real (emulated) Clerk."""

from __future__ import annotations

import asyncio
import json
import runpy
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from clerk_deps import (
    ClerkAuthError,
    ClerkClaims,
    ClerkSettings,
    get_settings,
    verify_token,
    verify_webhook,
)
from clerk_deps.revocation import (
    REVOCATION_HORIZON,
    Revocation,
    RevocationList,
    revocation_list,
)
from clerk_deps.testing import TestIssuer
from clerk_deps.testing.fakeclerk import FakeClerk
from clerk_deps.testing.server import serve_app
from clerk_deps.webhooks import sign_webhook

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SECRET = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="
ISSUER = TestIssuer()


pytestmark = pytest.mark.usefixtures("fresh_revocation_state")


def deliver(
    event_type: str, data: dict[str, Any], msg_id: str = "msg_1", timestamp: int | None = None
) -> None:
    event = {"object": "event", "type": event_type, "data": data}
    if timestamp is not None:
        event["timestamp"] = timestamp
    body = json.dumps(event).encode()
    now = int(time.time())
    headers = {
        "svix-id": msg_id,
        "svix-timestamp": str(now),
        "svix-signature": sign_webhook(SECRET, msg_id, now, body),
    }
    verify_webhook(body, headers, SECRET)


async def reason_of(token: str, settings: ClerkSettings) -> str | None:
    try:
        await verify_token(token, settings)
    except ClerkAuthError as error:
        return error.reason.value
    return None


# -- webhooks mode ---------------------------------------------------------------------------


async def test_a_revoked_session_is_refused_at_once_even_from_the_token_cache() -> None:
    settings = ISSUER.settings(revocation="webhooks")
    token = ISSUER.token("user_a", sid="sess_a")
    other = ISSUER.token("user_a", sid="sess_b")
    assert await reason_of(token, settings) is None  # verified and now cached
    assert await reason_of(token, settings) is None  # a cache hit
    deliver("session.revoked", {"id": "sess_a", "user_id": "user_a"})
    assert await reason_of(token, settings) == "session-revoked"  # the cached token too
    fresh = ISSUER.token("user_a", sid="sess_a")
    assert await reason_of(fresh, settings) == "session-revoked"  # a fresh verification
    assert await reason_of(other, settings) is None  # the user's other session is fine


async def test_the_refusal_is_a_401_that_says_what_happened() -> None:
    settings = ISSUER.settings(revocation="webhooks")
    deliver("session.ended", {"id": "sess_e"})
    with pytest.raises(ClerkAuthError) as caught:
        await verify_token(ISSUER.token(sid="sess_e"), settings)
    assert caught.value.status_code == 401
    assert caught.value.headers == {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    assert "ended" in caught.value.message and "sign in again" in caught.value.message


async def test_user_deleted_revokes_every_session_of_the_user() -> None:
    settings = ISSUER.settings(revocation="webhooks")
    tokens = [ISSUER.token("user_gone", sid=f"sess_{i}") for i in range(3)]
    for token in tokens:
        assert await reason_of(token, settings) is None
    deliver("user.deleted", {"id": "user_gone", "deleted": True})
    assert [await reason_of(t, settings) for t in tokens] == ["session-revoked"] * 3
    assert await reason_of(ISSUER.token("user_kept"), settings) is None


async def test_a_ban_refuses_the_tokens_issued_until_then_and_an_unban_lets_new_ones_in() -> None:
    settings = ISSUER.settings(revocation="webhooks")
    now = int(time.time())
    before = ISSUER.token("user_ban", sid="sess_1", now=now - 10)
    assert await reason_of(before, settings) is None  # verified and now cached
    deliver("user.updated", {"id": "user_ban", "banned": True}, timestamp=(now - 5) * 1000)
    assert await reason_of(before, settings) == "session-revoked"
    at_the_ban = ISSUER.token("user_ban", sid="sess_2", now=now - 5)
    assert await reason_of(at_the_ban, settings) == "session-revoked"
    with pytest.raises(ClerkAuthError, match="the user was banned"):
        await verify_token(before, settings)
    deliver("user.updated", {"id": "user_ban", "banned": False}, "msg_2", timestamp=now * 1000)
    assert await reason_of(before, settings) == "session-revoked"  # the ban ended that session
    after = ISSUER.token("user_ban", sid="sess_3", now=now)
    assert await reason_of(after, settings) is None  # a session started after the unban


async def test_with_revocation_off_nothing_is_checked() -> None:
    settings = ISSUER.settings()
    assert settings.revocation == "off"
    deliver("session.revoked", {"id": "sess_off"})
    assert await reason_of(ISSUER.token(sid="sess_off"), settings) is None


# -- the list: bounded by time -------------------------------------------------------------------


def claims(sid: str = "sess_1", sub: str = "user_1", exp: int = 1_000_060) -> ClerkClaims:
    return ClerkClaims(sub=sub, sid=sid, iat=exp - 60, exp=exp)


def test_entries_are_forgotten_when_their_tokens_would_have_expired() -> None:
    now = [1_000_000.0]
    revocations = RevocationList(clock=lambda: now[0])
    revocations.revoke("session", "sess_1")
    with pytest.raises(ClerkAuthError):
        revocations.check(claims(), now[0])
    now[0] += REVOCATION_HORIZON + 1
    revocations.check(claims(), now[0])  # forgotten: every token minted before has expired
    revocations.revoke("session", "sess_2")  # the next change sweeps the old entry out
    assert [e.id for e in revocations.snapshot()] == ["sess_2"] and len(revocations) == 1


def test_a_longer_lived_token_extends_its_revocation() -> None:
    now = [1_000_000.0]
    revocations = RevocationList(clock=lambda: now[0])
    revocations.revoke("session", "sess_1")
    late = int(now[0] + REVOCATION_HORIZON * 3)
    with pytest.raises(ClerkAuthError):
        revocations.check(claims(exp=late), now[0])
    now[0] += REVOCATION_HORIZON * 2
    with pytest.raises(ClerkAuthError):  # still refused: that token has not expired yet
        revocations.check(claims(exp=late), now[0])


def test_merging_keeps_the_earliest_revocation_and_the_latest_horizon() -> None:
    revocations = RevocationList(clock=lambda: 100.0)
    assert revocations.add(Revocation("user", "u", 50.0, 500.0))
    assert not revocations.add(Revocation("user", "u", 90.0, 400.0))  # adds nothing
    assert revocations.add(Revocation("user", "u", 90.0, 900.0))
    assert revocations.snapshot() == [Revocation("user", "u", 50.0, 900.0)]
    assert not revocations.add(Revocation("user", "v", 10.0, 99.0))  # already expired
    assert "users=1" in repr(revocations)


def test_merging_a_ban_keeps_the_widest_cut() -> None:
    revocations = RevocationList(clock=lambda: 100.0)
    assert revocations.add(Revocation("user", "u", 50.0, 500.0, issued_until=40.0))
    assert not revocations.add(Revocation("user", "u", 60.0, 500.0, issued_until=30.0))
    assert revocations.add(Revocation("user", "u", 60.0, 500.0, issued_until=60.0))  # banned again
    assert revocations.snapshot() == [Revocation("user", "u", 50.0, 500.0, 60.0)]
    assert revocations.add(Revocation("user", "u", 70.0, 400.0))  # deleted: every token
    assert revocations.snapshot() == [Revocation("user", "u", 50.0, 500.0, None)]
    assert not revocations.add(Revocation("user", "u", 80.0, 500.0, issued_until=80.0))


def test_a_cut_refuses_tokens_issued_at_or_before_it_only() -> None:
    revocations = RevocationList(clock=lambda: 1_000_000.0)
    revocations.revoke("user", "user_1", issued_until=999_990.0)
    for iat, refused in [(999_989, True), (999_990, True), (999_991, False)]:
        token = ClerkClaims(sub="user_1", sid="s", iat=iat, exp=iat + 60)
        assert (revocations.find(token, 1_000_000.0) is not None) is refused


@pytest.mark.parametrize(
    "text",
    [
        '{"k": "session", "i": "s", "r": 1, "f": 2}',
        '{"k": "session", "i": "s", "r": 1, "f": 2, "u": 1.5}',
        '{"k":"user","i":"s","r":1,"f":2,"u":"soon"}',
        "{}",
        "[]",
        "nope",
        '{"k":"x","i":"s","r":1,"f":2}',
    ],
)
def test_revocations_from_the_wire_parse_or_are_ignored(text: str) -> None:
    parsed = Revocation.from_json(text)
    assert (parsed is not None) is text.startswith('{"k": "session"')
    if parsed is not None:
        assert Revocation.from_json(parsed.to_json()) == parsed


# -- backend_api mode, against FakeClerk on 127.0.0.1 --------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeClerk]:
    with FakeClerk().serve() as served:
        yield served


def status_settings(fake: FakeClerk, **overrides: Any) -> ClerkSettings:
    values: dict[str, Any] = {"jwt_key": fake.public_pem, "revocation": "backend_api"}
    return fake.settings(**{**values, **overrides})


async def test_backend_api_mode_refuses_a_session_clerk_reports_revoked(fake: FakeClerk) -> None:
    user = fake.create_user(email_address="a@example.com")
    session = fake.create_session(user["id"])
    token = fake.session_token(session["id"])
    settings = status_settings(fake, session_status_ttl=0)
    assert await reason_of(token, settings) is None
    fake.revoke_session(session["id"])
    assert await reason_of(token, settings) == "session-revoked"
    # now on the revocation list: no further look-up is needed
    calls = fake.count(f"/v1/sessions/{session['id']}", "GET")
    assert await reason_of(token, settings) == "session-revoked"
    assert fake.count(f"/v1/sessions/{session['id']}", "GET") == calls


async def test_backend_api_mode_caches_status_and_makes_one_call_per_session(
    fake: FakeClerk,
) -> None:
    user = fake.create_user()
    session = fake.create_session(user["id"])
    token = fake.session_token(session["id"])
    settings = status_settings(fake, session_status_ttl=60)
    results = await asyncio.gather(*(reason_of(token, settings) for _ in range(20)))
    assert results == [None] * 20
    assert fake.count(f"/v1/sessions/{session['id']}", "GET") == 1
    fake.revoke_session(session["id"])  # within the TTL the cached "active" still stands
    assert await reason_of(token, settings) is None


async def test_a_session_clerk_does_not_know_is_refused(fake: FakeClerk) -> None:
    settings = status_settings(fake)
    token = fake.session_token(fake.create_session(fake.create_user()["id"])["id"])
    unknown = ISSUER.token(sid="sess_unknown")
    assert await reason_of(token, settings) is None
    settings = status_settings(fake, jwt_key=ISSUER.public_pem, issuer=ISSUER.issuer)
    assert await reason_of(unknown, settings) == "session-revoked"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize(
    ("fail_open", "expected"), [(True, None), (False, "session-status-unavailable")]
)
async def test_when_clerk_is_unreachable_the_setting_decides(
    fail_open: bool, expected: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ISSUER.settings(
        revocation="backend_api",
        secret_key="sk_test_unreachable",
        api_url=f"http://127.0.0.1:{closed_port()}",
        revocation_fail_open=fail_open,
        http_timeout=2,
    )
    token = ISSUER.token(sid="sess_x")
    assert await reason_of(token, settings) == expected
    assert "session status unavailable" in caplog.text and "sk_test_unreachable" not in caplog.text
    if not fail_open:
        with pytest.raises(ClerkAuthError) as caught:
            await verify_token(token, settings)
        assert caught.value.status_code == 503 and caught.value.headers is not None
        assert int(caught.value.headers["Retry-After"]) >= 1


async def test_the_budget_caps_look_ups_per_second(fake: FakeClerk) -> None:
    from clerk_deps.backend_api import ClerkBackendAPI
    from clerk_deps.session_status import SessionStatusChecker

    now = [100.0]
    api = ClerkBackendAPI(fake.secret_key, api_url=fake.base_url)
    checker = SessionStatusChecker(api, calls_per_second=5, clock=lambda: now[0])
    statuses = await asyncio.gather(*(checker.status(f"sess_flood_{i}") for i in range(50)))
    made = sum(1 for _, path in fake.requests if path.startswith("/v1/sessions/sess_flood_"))
    assert made == 10  # the burst (twice the rate), then nothing until time passes
    assert statuses.count("missing") == 10 and statuses.count(None) == 40
    now[0] += 1.0
    await checker.status("sess_later")
    assert fake.count("/v1/sessions/sess_later") == 1  # refilled at 5 a second


async def test_backend_api_mode_needs_a_secret_key() -> None:
    settings = ISSUER.settings(revocation="backend_api")
    with pytest.raises(ClerkAuthError) as caught:
        await verify_token(ISSUER.token(), settings)
    assert caught.value.status_code == 500 and "CLERK_SECRET_KEY" in caught.value.message


def test_the_revocation_setting_is_validated() -> None:
    from pydantic import ValidationError

    assert ClerkSettings(revocation="Backend-API").revocation == "backend_api"
    with pytest.raises(ValidationError, match="CLERK_REVOCATION"):
        ClerkSettings(revocation="sometimes")
    assert revocation_list() is revocation_list()


# -- banning a user at Clerk, end to end: FakeClerk sends the signed user.updated ----------------


def fleet_app() -> FastAPI:
    """The documented fleet worker (examples/fleet_app.py), loaded afresh."""
    app: FastAPI = runpy.run_path(str(EXAMPLES / "fleet_app.py"))["app"]
    return app


def test_a_user_banned_at_clerk_is_refused_and_comes_back_after_an_unban(fake: FakeClerk) -> None:
    app = fleet_app()
    settings = fake.settings(revocation="webhooks", webhook_signing_secret=SECRET)
    app.dependency_overrides[get_settings] = lambda: settings
    with serve_app(app) as url, httpx.Client(base_url=url) as client:
        fake.add_webhook_endpoint(f"{url}/webhooks/clerk", secret=SECRET)
        user = fake.create_user(email_address="banned@example.com")
        session = fake.create_session(user["id"])
        token = {"Authorization": f"Bearer {fake.session_token(session['id'])}"}
        assert client.get("/me", headers=token).json()["user_id"] == user["id"]

        secret = {"Authorization": f"Bearer {fake.secret_key}"}
        banned = httpx.post(f"{fake.base_url}/v1/users/{user['id']}/ban", headers=secret)
        assert banned.json()["banned"] is True
        deliveries = fake.webhook_deliveries
        assert [(d.type, d.status_code) for d in deliveries] == [("user.updated", 200)]
        refused = client.get("/me", headers=token)  # the token is cached and not expired
        assert refused.status_code == 401
        assert refused.json()["detail"]["reason"] == "session-revoked"
        assert "banned" in refused.json()["detail"]["message"]
        assert fake.get_session(session["id"])["status"] == "revoked"

        assert fake.unban_user(user["id"])["banned"] is False
        assert client.get("/me", headers=token).status_code == 401  # its session stays ended
        again = fake.create_session(user["id"])
        # A sign-in after the unban; iat counts whole seconds, so mint it a second later.
        fresh = fake.session_token(again["id"], now=time.time() + 1)
        answer = client.get("/me", headers={"Authorization": f"Bearer {fresh}"})
        assert answer.json() == {"user_id": user["id"], "session_id": again["id"]}
        assert [d.status_code for d in fake.webhook_deliveries] == [200, 200]
