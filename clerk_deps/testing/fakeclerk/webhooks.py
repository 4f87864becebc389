"""Webhook deliveries: FakeClerk signs and sends Clerk's events to the endpoints you register.

``fake.add_webhook_endpoint(url_or_app)`` registers an endpoint (a URL, or an ASGI app called
in process) with its own ``whsec_...`` secret. From then on, revoking a session
(``session.revoked``), deleting a user (``user.deleted``) and banning or unbanning one
(``user.updated``) send a delivery in Clerk's envelope, signed as Svix signs it, before the
call that caused it returns, so a test can assert on its effect at once.
:meth:`Webhooks.send_webhook` sends any other event, and :meth:`Webhooks.redeliver` sends a
delivery again with the same ``svix-id``, as Svix retries.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp

from ...webhooks import sign_webhook
from .common import json_route, not_found
from .users_sessions import UsersSessions

__all__ = ["WebhookDelivery", "WebhookEndpoint", "Webhooks"]

_IN_PROCESS = "http://fake-clerk-webhook.test"


@dataclass(frozen=True)
class WebhookEndpoint:
    """Where deliveries go: ``url`` (or an ASGI ``app`` at ``path``), signed with ``secret``;
    ``events`` limits the event types sent (empty: all)."""

    url: str
    secret: str = field(repr=False)
    events: frozenset[str] = frozenset()
    app: ASGIApp | None = field(default=None, repr=False, compare=False)

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events


@dataclass
class WebhookDelivery:
    """One attempt: the endpoint, ``svix-id``, event type, body, and the answer's status
    (``None`` with ``error`` when no answer came)."""

    endpoint: WebhookEndpoint
    msg_id: str
    type: str
    body: bytes = field(repr=False)
    status_code: int | None = None
    error: str | None = None


class Webhooks(UsersSessions):
    """Signed webhook deliveries of session and user events (see the module docstring)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._endpoints: list[WebhookEndpoint] = []
        self._deliveries: list[WebhookDelivery] = []
        self._instance_id = "ins_" + secrets.token_hex(12)

    def _routes(self) -> list[Route]:
        return [
            *super()._routes(),
            json_route("/v1/users/{user_id}", "DELETE", self._http_delete),
            json_route("/v1/users/{user_id}/ban", "POST", self._http_ban),
            json_route("/v1/users/{user_id}/unban", "POST", self._http_unban),
        ]

    # -- endpoints -------------------------------------------------------------------------

    def add_webhook_endpoint(
        self,
        target: str | ASGIApp,
        *,
        path: str = "/",
        events: Sequence[str] = (),
        secret: str | None = None,
    ) -> WebhookEndpoint:
        """Send deliveries to ``target``: a URL, or an ASGI app (called in process at
        ``path``). Returns the endpoint; ``endpoint.secret`` is its signing secret."""
        secret = secret or "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        if isinstance(target, str):
            endpoint = WebhookEndpoint(target, secret, frozenset(events))
        else:
            endpoint = WebhookEndpoint(_IN_PROCESS + path, secret, frozenset(events), app=target)
        with self._lock:
            self._endpoints.append(endpoint)
        return endpoint

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every delivery attempt, oldest first."""
        with self._lock:
            return list(self._deliveries)

    # -- events ----------------------------------------------------------------------------

    def revoke_session(self, session_id: str) -> dict[str, Any]:
        """Revoke the session and deliver ``session.revoked``; returns the session."""
        session = super().revoke_session(session_id)
        self.send_webhook("session.revoked", session)
        return session

    def delete_user(self, user_id: str) -> dict[str, Any]:
        """Delete the user (its sessions end) and deliver ``user.deleted``."""
        data = self._delete_user(user_id)
        self.send_webhook("user.deleted", data)
        return data

    def _delete_user(self, user_id: str) -> dict[str, Any]:
        with self._lock:
            if self._users.pop(user_id, None) is None:
                raise not_found("user", user_id)
            for session in self._sessions.values():
                if session["user_id"] == user_id and session["status"] == "active":
                    session["status"] = "removed"
        return {"object": "user", "id": user_id, "deleted": True}

    def ban_user(self, user_id: str) -> dict[str, Any]:
        """Ban the user, as ``POST /v1/users/{id}/ban`` does: its active sessions are revoked;
        delivers ``user.updated`` with ``banned`` true. Returns the user."""
        user = self._set_banned(user_id, banned=True)
        self.send_webhook("user.updated", user)
        return user

    def unban_user(self, user_id: str) -> dict[str, Any]:
        """Lift the ban (``POST /v1/users/{id}/unban``); delivers ``user.updated`` with
        ``banned`` false. Returns the user."""
        user = self._set_banned(user_id, banned=False)
        self.send_webhook("user.updated", user)
        return user

    def _set_banned(self, user_id: str, *, banned: bool) -> dict[str, Any]:
        now = self._now_ms()
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                raise not_found("user", user_id)
            user["banned"] = banned
            user["updated_at"] = now
            for session in self._sessions.values():
                if banned and session["user_id"] == user_id and session["status"] == "active":
                    session["status"] = "revoked"
                    session["updated_at"] = now
            return copy.deepcopy(user)

    def send_webhook(self, event_type: str, data: dict[str, Any]) -> list[WebhookDelivery]:
        """Deliver an event of ``event_type`` with ``data`` to every interested endpoint."""
        deliveries: list[WebhookDelivery] = _run(self._send_all(self._prepare(event_type, data)))
        return deliveries

    def redeliver(self, delivery: WebhookDelivery) -> WebhookDelivery:
        """Send ``delivery`` again: same ``svix-id`` and body, fresh timestamp and signature."""
        again = WebhookDelivery(delivery.endpoint, delivery.msg_id, delivery.type, delivery.body)
        sent: list[WebhookDelivery] = _run(self._send_all([again]))
        return sent[0]

    def _prepare(self, event_type: str, data: dict[str, Any]) -> list[WebhookDelivery]:
        envelope = {
            "data": copy.deepcopy(data),
            "event_attributes": {"http_request": {"client_ip": "127.0.0.1", "user_agent": ""}},
            "instance_id": self._instance_id,
            "object": "event",
            "timestamp": self._now_ms(),
            "type": event_type,
        }
        body = json.dumps(envelope).encode()
        with self._lock:
            endpoints = [e for e in self._endpoints if e.wants(event_type)]
        return [
            WebhookDelivery(endpoint, "msg_" + secrets.token_hex(14), event_type, body)
            for endpoint in endpoints
        ]

    async def _send_all(self, deliveries: list[WebhookDelivery]) -> list[WebhookDelivery]:
        for delivery in deliveries:
            await self._send(delivery)
            with self._lock:
                self._deliveries.append(delivery)
        return deliveries

    async def _send(self, delivery: WebhookDelivery) -> None:
        endpoint = delivery.endpoint
        stamp = int(self.clock())
        headers = {
            "content-type": "application/json",
            "svix-id": delivery.msg_id,
            "svix-timestamp": str(stamp),
            "svix-signature": sign_webhook(endpoint.secret, delivery.msg_id, stamp, delivery.body),
        }
        transport = httpx.ASGITransport(app=endpoint.app) if endpoint.app is not None else None
        try:
            async with httpx.AsyncClient(transport=transport, timeout=10) as client:
                response = await client.post(endpoint.url, content=delivery.body, headers=headers)
            delivery.status_code = response.status_code
        except httpx.HTTPError as error:
            delivery.error = type(error).__name__

    # -- HTTP ------------------------------------------------------------------------------

    async def _http_revoke_session(self, request: Request) -> dict[str, Any]:
        session = UsersSessions.revoke_session(self, request.path_params["session_id"])
        await self._send_all(self._prepare("session.revoked", session))
        return session

    async def _http_delete(self, request: Request) -> dict[str, Any]:
        data = self._delete_user(request.path_params["user_id"])
        await self._send_all(self._prepare("user.deleted", data))
        return data

    async def _http_ban(self, request: Request) -> dict[str, Any]:
        user = self._set_banned(request.path_params["user_id"], banned=True)
        await self._send_all(self._prepare("user.updated", user))
        return user

    async def _http_unban(self, request: Request) -> dict[str, Any]:
        user = self._set_banned(request.path_params["user_id"], banned=False)
        await self._send_all(self._prepare("user.updated", user))
        return user


def _run(coroutine: Any) -> Any:
    """Run ``coroutine`` to completion from synchronous code, inside an event loop or not."""
    outcome: list[Any] = []

    def target() -> None:
        outcome.append(asyncio.run(coroutine))

    thread = threading.Thread(target=target, name="fake-clerk-webhooks")
    thread.start()
    thread.join()
    if not outcome:  # pragma: no cover - the coroutine catches transport errors itself
        raise RuntimeError("webhook delivery failed")
    return outcome[0]
