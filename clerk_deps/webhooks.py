"""Clerk webhooks: verify a delivery, get a typed event, know whether it was seen before.

Clerk sends webhooks through Svix. A delivery carries ``svix-id``, ``svix-timestamp`` and
``svix-signature``; the signature is HMAC-SHA256 over ``<svix-id>.<svix-timestamp>.<raw body>``
keyed with the base64 part of the endpoint's ``whsec_...`` signing secret. This module checks
it (any of several ``v1,`` signatures may match, compared in constant time), refuses
timestamps more than five minutes off, and returns a :class:`ClerkWebhookEvent`.

Every verified ``session.revoked`` / ``session.ended`` / ``session.removed`` and
``user.deleted`` delivery, and every ``user.updated`` of a banned user, also goes on the
revocation list (:mod:`clerk_deps.revocation`), so ``CLERK_REVOCATION=webhooks`` needs no code
in the handler.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends
from pydantic import SecretStr
from starlette.requests import Request

from .dependencies import resolve_settings
from .errors import ClerkAuthError, ErrorReason
from .revocation import REVOKING_SESSION_EVENTS, Kind, Revocation, revocation_list
from .settings import ClerkSettings, get_settings
from .store import memory_store, store_for
from .webhook_events import ClerkWebhookEvent, WebhookSession, WebhookUser

__all__ = [
    "MAX_WEBHOOK_BYTES",
    "SEEN_TTL",
    "TOLERANCE",
    "ClerkWebhookDep",
    "ClerkWebhookEvent",
    "WebhookSession",
    "WebhookUser",
    "sign_webhook",
    "verify_webhook",
    "verify_webhook_request",
]

TOLERANCE = 300
"""Seconds ``svix-timestamp`` may differ from this server's clock, either way."""
MAX_WEBHOOK_BYTES = 1024 * 1024
"""Largest body accepted. Clerk's events are a few KiB; a user with many addresses stays far
below this."""
SEEN_TTL = 3 * 24 * 3600.0
"""Seconds a delivery id is remembered: Svix retries a failed delivery for about a day and a
half, so a redelivery is always recognised."""

_HEADERS = ("id", "timestamp", "signature")
_FIX_SIGNATURE = (
    "no signature in svix-signature matches: check that CLERK_WEBHOOK_SIGNING_SECRET is the "
    "Signing Secret of this endpoint (Clerk Dashboard > Webhooks > your endpoint; every endpoint "
    "and every instance has its own), and that the body reaches verify_webhook exactly as "
    "received (a proxy or a JSON parser that re-serialises it breaks the signature)"
)
_background: set[asyncio.Task[None]] = set()


def _refuse(message: str) -> ClerkAuthError:
    return ClerkAuthError(ErrorReason.WEBHOOK_INVALID, message)


# -- the signature scheme --------------------------------------------------------------------


def signing_key(secret: str | SecretStr) -> bytes:
    """The HMAC key of a ``whsec_...`` signing secret (the prefix is optional)."""
    text = (secret.get_secret_value() if isinstance(secret, SecretStr) else secret).strip()
    encoded = text.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise ClerkAuthError(
            ErrorReason.AUTH_NOT_CONFIGURED,
            "CLERK_WEBHOOK_SIGNING_SECRET is not a webhook signing secret: copy the whsec_... "
            "value shown as Signing Secret on the endpoint's page in the Clerk Dashboard",
        )
    return key


def sign_webhook(secret: str | SecretStr, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``v1,<base64>`` signature Svix sends for this delivery (for tests and emulators)."""
    raw = body.encode() if isinstance(body, str) else body
    digest = hmac.new(signing_key(secret), f"{msg_id}.{timestamp}.".encode() + raw, hashlib.sha256)
    return "v1," + base64.b64encode(digest.digest()).decode("ascii")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """``svix-<name>``, or the Standard Webhooks ``webhook-<name>``; case-insensitive."""
    getlist = getattr(headers, "getlist", None)
    for prefix in ("svix-", "webhook-"):
        key = prefix + name
        if getlist is not None:
            values = getlist(key)
            if len(values) > 1:
                raise _refuse(f"header {key} appears {len(values)} times; send it once")
            if values:
                return str(values[0])
            continue
        for candidate, value in headers.items():
            if candidate.lower() == key:
                return value
    return None


def _check_timestamp(text: str, now: float, tolerance: float) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise _refuse("svix-timestamp must be whole seconds since the epoch")
    timestamp = int(text)
    if now - timestamp > tolerance:
        raise _refuse(
            f"svix-timestamp is {now - timestamp:.0f} s old (tolerance {tolerance:g} s): a "
            "replayed or long-delayed delivery, or this server's clock is ahead; check NTP"
        )
    if timestamp - now > tolerance:
        raise _refuse(
            f"svix-timestamp is {timestamp - now:.0f} s in the future (tolerance "
            f"{tolerance:g} s): this server's clock is behind; check NTP"
        )
    return timestamp


def _check_signature(key: bytes, signed: bytes, header: str) -> None:
    expected = hmac.new(key, signed, hashlib.sha256).digest()
    candidates = []
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue  # other schemes (v1a asymmetric, future versions) are not ours to judge
        try:
            candidates.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not candidates:
        raise _refuse("svix-signature holds no v1,<base64> signature")
    # every candidate is compared, so the time taken does not say which one came close
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(candidate, expected)
    if not matched:
        raise _refuse(_FIX_SIGNATURE)


def _envelope(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise _refuse(
            "the body is not JSON; Clerk sends a JSON event object (was the body decoded or "
            "compressed on the way?)"
        ) from None
    if not isinstance(value, dict):
        raise _refuse("the body is JSON but not an event object")
    if not isinstance(value.get("type"), str) or not isinstance(value.get("data"), dict):
        raise _refuse("not a Clerk event: it needs a string 'type' and an object 'data'")
    return value


def _verified(
    body: Any,
    headers: Mapping[str, str],
    secret: str | SecretStr | None,
    settings: ClerkSettings | None,
    now: float,
    tolerance: float,
    max_body_bytes: int,
) -> ClerkWebhookEvent:
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif isinstance(body, (bytearray, memoryview)):
        body = bytes(body)
    if not isinstance(body, bytes):
        raise _refuse(
            f"verify_webhook needs the raw body (bytes or str), not {type(body).__name__}: "
            "JSON parsed and serialised again no longer matches the signature"
        )
    if secret is None:
        secret = (settings or get_settings()).webhook_signing_secret
    if (
        secret is None
        or not (secret.get_secret_value() if isinstance(secret, SecretStr) else secret).strip()
    ):
        raise ClerkAuthError(
            ErrorReason.AUTH_NOT_CONFIGURED,
            "no webhook signing secret: set CLERK_WEBHOOK_SIGNING_SECRET to the endpoint's "
            "Signing Secret (whsec_...) from the Clerk Dashboard, or pass secret=",
        )
    key = signing_key(secret)
    found = {name: _header(headers, name) for name in _HEADERS}
    missing = [f"svix-{name}" for name, value in found.items() if not value]
    if missing:
        raise _refuse(
            f"missing header(s) {', '.join(missing)}: not a Clerk (Svix) delivery, or a proxy "
            "dropped them; forward svix-id, svix-timestamp and svix-signature unchanged"
        )
    msg_id, stamp, signature = (str(found[name]) for name in _HEADERS)
    if len(body) > max_body_bytes:
        raise _refuse(f"the body is larger than {max_body_bytes} bytes")
    timestamp = _check_timestamp(stamp.strip(), now, tolerance)
    _check_signature(key, f"{msg_id}.{stamp}.".encode() + body, signature)
    envelope = _envelope(body)
    return ClerkWebhookEvent.from_envelope(msg_id, timestamp, envelope)


# -- what a verified delivery changes ---------------------------------------------------------


def revocation_in(event: ClerkWebhookEvent) -> tuple[Kind, str] | None:
    """The session or user a verified event revokes, if any: a session that ended, a user
    deleted, or a user banned (``user.updated`` with ``banned`` true)."""
    ident = event.data.get("id")
    if not isinstance(ident, str) or not ident:
        return None
    if event.type in REVOKING_SESSION_EVENTS:
        return "session", ident
    if event.type == "user.deleted" or _is_ban(event):
        return "user", ident
    return None


def _is_ban(event: ClerkWebhookEvent) -> bool:
    return event.type == "user.updated" and event.data.get("banned") is True


def _ban_time(event: ClerkWebhookEvent) -> float:
    """When Clerk banned the user: the event's time (milliseconds), else the delivery's
    ``svix-timestamp``. Clerk's clock, like the ``iat`` of the tokens it is compared with."""
    return event.timestamp / 1000 if event.timestamp is not None else float(event.signed_at)


def _revoke_locally(event: ClerkWebhookEvent) -> Revocation | None:
    found = revocation_in(event)
    if found is None:
        return None
    # Banning ends the user's sessions and forbids new ones until an unban: only the tokens
    # issued up to the ban are refused, so sessions started after an unban are not.
    until = _ban_time(event) if _is_ban(event) else None
    return revocation_list().revoke(*found, issued_until=until)


def verify_webhook(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str | SecretStr | None = None,
    *,
    settings: ClerkSettings | None = None,
    clock: Callable[[], float] = time.time,
    tolerance: float = TOLERANCE,
    max_body_bytes: int = MAX_WEBHOOK_BYTES,
) -> ClerkWebhookEvent:
    """Verify a Clerk (Svix) webhook delivery and return its event.

    ``body`` is the raw request body, ``headers`` the request headers. ``secret`` defaults to
    ``CLERK_WEBHOOK_SIGNING_SECRET``. Raises :class:`~clerk_deps.ClerkAuthError`: 400
    ``webhook-invalid`` with what to fix, or 500 ``auth-not-configured`` without a secret.

    ``event.redelivered`` is ``True`` when this process accepted the same ``svix-id`` before
    (inside FastAPI, :data:`ClerkWebhookDep` checks across every worker sharing Redis).
    Revoking events go on the revocation list before this returns.
    """
    event = _verified(body, headers, secret, settings, clock(), tolerance, max_body_bytes)
    first = memory_store().add_if_absent_now("webhook:" + event.id, SEEN_TTL)
    entry = _revoke_locally(event)
    if entry is not None and settings is not None and settings.redis_url is not None:
        _publish_in_background(entry, settings)
    return event if first else event.model_copy(update={"redelivered": True})


def _publish_in_background(entry: Revocation, settings: ClerkSettings) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return  # no loop, no Redis client: the revocation stays in this process
    task = asyncio.ensure_future(store_for(settings).publish_revocation(entry))
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _refuse(f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _refuse(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def verify_webhook_request(request: Request) -> AsyncIterator[ClerkWebhookEvent]:
    """The dependency behind :data:`ClerkWebhookDep`: verifies the raw body of ``request``.

    Settings come as for ``require_clerk_user`` (``app.dependency_overrides[get_settings]``
    is honoured). With ``CLERK_REDIS_URL``, redeliveries are recognised across workers and
    revocations reach every worker before the handler runs.
    """
    settings = await resolve_settings(request)
    body = await _read_body(request, MAX_WEBHOOK_BYTES)
    event = _verified(body, request.headers, None, settings, time.time(), TOLERANCE, len(body))
    store = store_for(settings)
    first = await store.add_if_absent("webhook:" + event.id, SEEN_TTL)
    if store is not memory_store():
        memory_store().put_now("webhook:" + event.id, "1", SEEN_TTL)
    entry = _revoke_locally(event)
    if entry is not None:
        await store.publish_revocation(entry)
    try:
        yield event if first else event.model_copy(update={"redelivered": True})
    except Exception:
        # the handler failed, so Svix will retry: that retry is the first complete delivery
        if first:
            await store.forget("webhook:" + event.id)
            await memory_store().forget("webhook:" + event.id)
        raise


ClerkWebhookDep = Annotated[ClerkWebhookEvent, Depends(verify_webhook_request)]
"""``event: ClerkWebhookDep`` in a ``POST`` route: a verified Clerk webhook event."""
