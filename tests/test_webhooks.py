"""Webhook verification: the Svix scheme, its published test vector, every refusal, the event
views, redelivery, and the FastAPI dependency on a real request body."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from clerk_deps import (
    ClerkAuthError,
    ClerkSettings,
    ClerkWebhookDep,
    ClerkWebhookEvent,
    get_settings,
    verify_webhook,
)
from clerk_deps.revocation import revocation_list
from clerk_deps.webhooks import MAX_WEBHOOK_BYTES, sign_webhook, signing_key

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another secret, another endpoint").decode()
NOW = 1_700_000_000

# The Standard Webhooks specification's published vector (its reference libraries test it).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


pytestmark = pytest.mark.usefixtures("fresh_revocation_state")


def envelope(event_type: str = "user.created", **data: Any) -> bytes:
    body = {
        "object": "event",
        "type": event_type,
        "data": {"id": "user_1", **data},
        "timestamp": NOW * 1000,
        "instance_id": "ins_123",
    }
    return json.dumps(body).encode()


def headers_for(
    body: bytes, *, msg_id: str = "msg_1", timestamp: int = NOW, secret: str = SECRET
) -> dict[str, str]:
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(timestamp),
        "svix-signature": sign_webhook(secret, msg_id, timestamp, body),
    }


def verify(body: bytes | str, headers: dict[str, str], **kwargs: Any) -> ClerkWebhookEvent:
    kwargs.setdefault("clock", lambda: NOW)
    kwargs.setdefault("secret", SECRET)
    return verify_webhook(body, headers, **kwargs)


def refusal(body: bytes | str, headers: dict[str, str], **kwargs: Any) -> ClerkAuthError:
    with pytest.raises(ClerkAuthError) as caught:
        verify(body, headers, **kwargs)
    return caught.value


# -- the published test vector ----------------------------------------------------------------


def test_signing_reproduces_the_standard_webhooks_vector() -> None:
    assert sign_webhook(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    # the whsec_ prefix is optional, as in the specification's libraries
    bare = VECTOR_SECRET.removeprefix("whsec_")
    assert sign_webhook(bare, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


@pytest.mark.parametrize(
    ("signature", "accepted"),
    [
        (VECTOR_SIGNATURE, True),
        ("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=", False),  # last byte changed
        (f"v2,{VECTOR_SIGNATURE[3:]}", False),  # right bytes, unknown version
    ],
)
def test_verification_of_the_standard_webhooks_vector(signature: str, accepted: bool) -> None:
    headers = {
        "webhook-id": VECTOR_ID,  # the specification's unbranded header names work too
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": signature,
    }
    error = refusal(VECTOR_BODY, headers, secret=VECTOR_SECRET, clock=lambda: VECTOR_TIMESTAMP)
    # the vector's body is not a Clerk event, so even a match is refused, but for that reason
    assert error.status_code == 400 and error.reason == "webhook-invalid"
    assert ("not a Clerk event" in error.message) is accepted


# -- accepted deliveries ----------------------------------------------------------------------


def test_a_valid_delivery_gives_the_typed_event() -> None:
    body = envelope(
        "user.created",
        first_name="Ada",
        primary_email_address_id="idn_1",
        email_addresses=[{"id": "idn_1", "email_address": "ada@example.com"}],
    )
    event = verify(body, headers_for(body, msg_id="msg_abc"))
    assert (event.id, event.type, event.instance_id) == ("msg_abc", "user.created", "ins_123")
    assert event.timestamp == NOW * 1000 and event.signed_at == NOW
    assert event.data["first_name"] == "Ada" and event.redelivered is False
    assert event.user is not None and event.user.primary_email_address == "ada@example.com"
    assert event.session is None


def test_session_events_have_a_session_view() -> None:
    body = envelope("session.created", user_id="user_9", status="active", expire_at=5)
    event = verify(body, headers_for(body))
    assert event.session is not None
    assert (event.session.user_id, event.session.status) == ("user_9", "active")
    assert event.user is None


def test_a_view_of_malformed_data_is_none() -> None:
    body = json.dumps({"type": "user.updated", "data": {"id": 7}}).encode()
    event = verify(body, headers_for(body))
    assert event.user is None and event.timestamp is None and event.instance_id is None


def test_several_signatures_pass_when_one_matches() -> None:
    body = envelope()
    good = headers_for(body)["svix-signature"]
    wrong = sign_webhook(OTHER_SECRET, "msg_1", NOW, body)
    headers = headers_for(body)
    headers["svix-signature"] = f"v1a,abc v1,not-base64!! {wrong} {good} v2,{good[3:]}"
    assert verify(body, headers).type == "user.created"


def test_headers_are_case_insensitive_and_str_bodies_work() -> None:
    body = envelope()
    headers = {k.upper(): v for k, v in headers_for(body).items()}
    assert verify(body.decode(), headers).id == "msg_1"


def test_timestamps_at_the_edge_of_the_tolerance_pass() -> None:
    body = envelope()
    for skew in (-300, 300):
        headers = headers_for(body, timestamp=NOW + skew, msg_id=f"msg_{skew}")
        assert verify(body, headers).signed_at == NOW + skew


# -- refusals -----------------------------------------------------------------------------------


def test_a_tampered_body_is_refused_with_what_to_fix() -> None:
    body = envelope()
    headers = headers_for(body)
    error = refusal(body.replace(b"user_1", b"user_2"), headers)
    assert (error.status_code, error.reason) == (400, "webhook-invalid")
    assert "CLERK_WEBHOOK_SIGNING_SECRET" in error.message
    assert "JSON parser" in error.message and "proxy" in error.message


def test_a_re_serialised_body_is_refused() -> None:
    body = envelope()
    reparsed = json.dumps(json.loads(body), separators=(",", ":")).encode()
    assert refusal(reparsed, headers_for(body)).reason == "webhook-invalid"


def test_a_parsed_body_is_refused_with_an_explanation() -> None:
    body = envelope()
    error = refusal(json.loads(body), headers_for(body))
    assert error.status_code == 400 and "raw body" in error.message


def test_the_wrong_secret_is_refused() -> None:
    body = envelope()
    error = refusal(body, headers_for(body, secret=OTHER_SECRET))
    assert error.status_code == 400 and "Signing Secret of this endpoint" in error.message


@pytest.mark.parametrize(("skew", "word"), [(-301, "old"), (301, "future"), (-86_400, "old")])
def test_stale_and_future_timestamps_are_refused(skew: int, word: str) -> None:
    body = envelope()
    error = refusal(body, headers_for(body, timestamp=NOW + skew))
    assert error.status_code == 400 and word in error.message and "clock" in error.message


FULLWIDTH_NINES = "\N{FULLWIDTH DIGIT NINE}" * 2


@pytest.mark.parametrize("value", ["", "abc", "1.5", "-5", "1e9", FULLWIDTH_NINES, "9" * 13])
def test_a_malformed_timestamp_is_refused(value: str) -> None:
    body = envelope()
    headers = headers_for(body)
    headers["svix-timestamp"] = value
    assert refusal(body, headers).status_code == 400


@pytest.mark.parametrize("missing", ["svix-id", "svix-timestamp", "svix-signature"])
def test_missing_headers_are_named(missing: str) -> None:
    body = envelope()
    headers = headers_for(body)
    del headers[missing]
    error = refusal(body, headers)
    assert error.status_code == 400 and missing in error.message


def test_a_signature_header_without_v1_entries_is_refused() -> None:
    body = envelope()
    headers = headers_for(body)
    headers["svix-signature"] = "v1,%%% v2,abcd"
    assert "no v1" in refusal(body, headers).message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"not json at all", "not JSON"),
        (b"\xff\xfe garbage", "not JSON"),
        (b"[1, 2]", "not an event object"),
        (b'{"type": "user.created"}', "not a Clerk event"),
        (b'{"type": 3, "data": {}}', "not a Clerk event"),
        (b"[" * 100_000, "not JSON"),
    ],
)
def test_a_signed_body_that_is_not_an_event_is_refused(body: bytes, expected: str) -> None:
    error = refusal(body, headers_for(body))
    assert error.status_code == 400 and expected in error.message


def test_an_oversized_body_is_refused() -> None:
    body = envelope(padding="x" * MAX_WEBHOOK_BYTES)
    error = refusal(body, headers_for(body))
    assert error.status_code == 400 and "larger" in error.message


def test_a_missing_secret_is_a_configuration_error() -> None:
    body = envelope()
    error = refusal(body, headers_for(body), secret=None, settings=ClerkSettings())
    assert (error.status_code, error.reason) == (500, "auth-not-configured")
    assert "CLERK_WEBHOOK_SIGNING_SECRET" in error.message


@pytest.mark.parametrize("secret", ["whsec_", "whsec_%%%", "   "])
def test_a_malformed_secret_is_a_configuration_error(secret: str) -> None:
    body = envelope()
    error = refusal(body, headers_for(body), secret=secret)
    assert error.status_code == 500 and error.reason == "auth-not-configured"


def test_the_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_WEBHOOK_SIGNING_SECRET", SECRET)
    get_settings.cache_clear()
    body = envelope()
    assert verify_webhook(body, headers_for(body), clock=lambda: NOW).id == "msg_1"


def test_secret_and_signatures_stay_out_of_errors_reprs_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = ClerkSettings(webhook_signing_secret=SECRET)
    body = envelope()
    headers = headers_for(body)
    good = headers["svix-signature"]
    texts = [repr(settings), str(settings.model_dump())]
    for bad in (headers_for(body, secret=OTHER_SECRET), headers):
        try:
            event = verify_webhook(body, bad, settings=settings, clock=lambda: NOW)
            texts.append(repr(event))
        except ClerkAuthError as error:
            texts += [str(error), repr(error), json.dumps(error.detail)]
    texts.append(caplog.text)
    secret_part = SECRET.removeprefix("whsec_")
    for text in texts:
        assert secret_part not in text and good[3:] not in text
    assert signing_key(SECRET) == b"0123456789abcdef0123456789abcdef"


# -- redelivery -----------------------------------------------------------------------------------


def test_a_replayed_svix_id_is_marked_redelivered() -> None:
    body = envelope()
    first = verify(body, headers_for(body, msg_id="msg_replay"))
    again = verify(body, headers_for(body, msg_id="msg_replay", timestamp=NOW + 60))
    other = verify(body, headers_for(body, msg_id="msg_other"))
    assert (first.redelivered, again.redelivered, other.redelivered) == (False, True, False)
    assert again.id == first.id and again.data == first.data


def test_refused_deliveries_are_not_remembered() -> None:
    body = envelope()
    refusal(body, headers_for(body, msg_id="msg_x", secret=OTHER_SECRET))
    assert verify(body, headers_for(body, msg_id="msg_x")).redelivered is False


# -- revoking events feed the revocation list ---------------------------------------------------


@pytest.mark.parametrize("event_type", ["session.revoked", "session.ended", "session.removed"])
def test_ending_session_events_revoke_the_session(event_type: str) -> None:
    body = json.dumps({"type": event_type, "data": {"id": "sess_1", "user_id": "u"}}).encode()
    verify(body, headers_for(body))
    assert [(e.kind, e.id) for e in revocation_list().snapshot()] == [("session", "sess_1")]


def test_user_deleted_revokes_the_user_and_other_events_revoke_nothing() -> None:
    for event_type, data in [
        ("session.created", {"id": "sess_2"}),
        ("user.updated", {"id": "user_2"}),
        ("user.updated", {"id": "user_4", "banned": False}),  # an unban revokes nothing
        ("user.updated", {"id": "user_5", "banned": "true"}),  # not Clerk's boolean
        ("session.revoked", {"id": 5}),
        ("user.deleted", {"id": "user_3", "deleted": True}),
    ]:
        body = json.dumps({"type": event_type, "data": data}).encode()
        verify(body, headers_for(body, msg_id=f"msg_{event_type}"))
    assert [(e.kind, e.id) for e in revocation_list().snapshot()] == [("user", "user_3")]


def test_a_banned_user_is_revoked_for_the_tokens_issued_until_the_ban() -> None:
    """Clerk's event time (ms) marks the ban; without it, the delivery's svix-timestamp."""
    body = envelope("user.updated", banned=True)
    verify(body, headers_for(body))
    bare = json.dumps({"type": "user.updated", "data": {"id": "user_2", "banned": True}}).encode()
    verify(bare, headers_for(bare, msg_id="msg_2", timestamp=NOW - 30))
    entries = sorted(revocation_list().snapshot(), key=lambda e: e.id)
    assert [(e.kind, e.id, e.issued_until) for e in entries] == [
        ("user", "user_1", float(NOW)),
        ("user", "user_2", float(NOW - 30)),
    ]


# -- the FastAPI dependency ---------------------------------------------------------------------


def webhook_app(settings: ClerkSettings) -> FastAPI:
    app = FastAPI()
    app.dependency_overrides[get_settings] = lambda: settings
    handled: list[str] = []

    @app.post("/webhooks/clerk")
    async def receive(event: ClerkWebhookDep) -> dict[str, Any]:
        if not event.redelivered:
            handled.append(event.id)
        return {"type": event.type, "redelivered": event.redelivered, "handled": len(handled)}

    return app


def test_the_dependency_verifies_the_raw_body_and_recognises_redelivery() -> None:
    import time

    client = TestClient(webhook_app(ClerkSettings(webhook_signing_secret=SECRET)))
    body = envelope("user.created")
    now = int(time.time())
    headers = headers_for(body, msg_id="msg_dep", timestamp=now)
    first = client.post("/webhooks/clerk", content=body, headers=headers)
    assert first.json() == {"type": "user.created", "redelivered": False, "handled": 1}
    again = client.post("/webhooks/clerk", content=body, headers=headers)
    assert again.json() == {"type": "user.created", "redelivered": True, "handled": 1}


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ("tamper", 400, "webhook-invalid"),
        ("no-headers", 400, "webhook-invalid"),
        ("huge", 400, "webhook-invalid"),
        ("no-secret", 500, "auth-not-configured"),
    ],
)
def test_the_dependency_refuses_bad_deliveries(change: str, status: int, reason: str) -> None:
    import time

    secret = None if change == "no-secret" else SECRET
    client = TestClient(webhook_app(ClerkSettings(webhook_signing_secret=secret)))
    body = envelope()
    headers = headers_for(body, timestamp=int(time.time()))
    if change == "tamper":
        body = body.replace(b"user_1", b"user_X")
    elif change == "no-headers":
        headers = {}
    elif change == "huge":
        body = b"x" * (MAX_WEBHOOK_BYTES + 1)
    response = client.post("/webhooks/clerk", content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["detail"]["reason"] == reason


def test_the_dependency_stops_reading_an_oversized_stream() -> None:
    import time

    client = TestClient(webhook_app(ClerkSettings(webhook_signing_secret=SECRET)))
    body = envelope()
    headers = headers_for(body, timestamp=int(time.time()))

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is found while reading
        for _ in range(MAX_WEBHOOK_BYTES // 65536 + 2):
            yield b"x" * 65536

    response = client.post("/webhooks/clerk", content=chunks(), headers=headers)
    assert response.status_code == 400 and "larger" in response.json()["detail"]["message"]


def test_a_delivery_whose_handler_failed_is_not_marked_redelivered() -> None:
    import time

    app = FastAPI()
    app.dependency_overrides[get_settings] = lambda: ClerkSettings(webhook_signing_secret=SECRET)
    outcomes = iter([RuntimeError("database down"), None])

    @app.post("/hook")
    async def hook(event: ClerkWebhookDep) -> dict[str, bool]:
        failure = next(outcomes)
        if failure is not None:
            raise failure
        return {"redelivered": event.redelivered}

    client = TestClient(app, raise_server_exceptions=False)
    body = envelope()
    headers = headers_for(body, msg_id="msg_retry", timestamp=int(time.time()))
    assert client.post("/hook", content=body, headers=headers).status_code == 500
    retried = client.post("/hook", content=body, headers=headers)  # Svix's retry
    assert retried.json() == {"redelivered": False}
