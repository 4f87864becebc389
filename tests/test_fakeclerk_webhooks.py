"""FakeClerk's webhook deliveries: Clerk's envelope, Svix signatures a real endpoint verifies,
sent by the Python methods and by the HTTP endpoints, to a URL or an app in process."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from clerk_deps import ClerkSettings, ClerkWebhookDep, get_settings
from clerk_deps.testing import FakeClerk
from clerk_deps.testing.server import serve_app

pytestmark = pytest.mark.usefixtures("fresh_revocation_state")


def receiver() -> tuple[FastAPI, list[dict[str, Any]]]:
    app = FastAPI()
    received: list[dict[str, Any]] = []

    @app.post("/hook")
    async def hook(event: ClerkWebhookDep) -> dict[str, str]:
        received.append(
            {
                "id": event.id,
                "type": event.type,
                "data": event.data,
                "instance_id": event.instance_id,
                "redelivered": event.redelivered,
            }
        )
        return {"ok": event.type}

    return app, received


def test_python_methods_deliver_signed_events_in_process() -> None:
    fake = FakeClerk()
    app, received = receiver()
    endpoint = fake.add_webhook_endpoint(app, path="/hook")
    app.dependency_overrides[get_settings] = lambda: ClerkSettings(
        webhook_signing_secret=endpoint.secret
    )
    user = fake.create_user(email_address="w@example.com")
    session = fake.create_session(user["id"])
    fake.revoke_session(session["id"])
    fake.delete_user(user["id"])
    assert [r["type"] for r in received] == ["session.revoked", "user.deleted"]
    assert received[0]["data"]["id"] == session["id"] and received[0]["instance_id"]
    assert received[1]["data"] == {"object": "user", "id": user["id"], "deleted": True}
    assert [d.status_code for d in fake.webhook_deliveries] == [200, 200]
    again = fake.redeliver(fake.webhook_deliveries[0])
    assert again.status_code == 200 and received[-1]["redelivered"] is True
    assert fake.get_session(session["id"])["status"] == "revoked"
    with pytest.raises(Exception, match="user"):
        fake.get_user(user["id"])
    assert endpoint.secret not in repr(endpoint)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_http_endpoints_deliver_to_urls_before_answering() -> None:
    app, received = receiver()
    with FakeClerk().serve() as fake, serve_app(app) as url:
        endpoint = fake.add_webhook_endpoint(f"{url}/hook", events=["user.deleted"])
        everything = fake.add_webhook_endpoint(f"{url}/hook")
        secrets_by_endpoint = {endpoint.secret, everything.secret}
        # the receiver accepts the first endpoint's secret only: the other one's are refused
        app.dependency_overrides[get_settings] = lambda: ClerkSettings(
            webhook_signing_secret=endpoint.secret
        )
        dead = fake.add_webhook_endpoint(f"http://127.0.0.1:{closed_port()}/hook")
        user = fake.create_user()
        session = fake.create_session(user["id"])
        auth = {"Authorization": f"Bearer {fake.secret_key}"}
        with httpx.Client(base_url=fake.base_url, headers=auth) as client:
            assert client.post(f"/v1/sessions/{session['id']}/revoke").status_code == 200
            assert client.delete(f"/v1/users/{user['id']}").json()["deleted"] is True
            assert client.delete(f"/v1/users/{user['id']}").status_code == 404
        deliveries = fake.webhook_deliveries
        by_endpoint = {(d.endpoint.url, d.type, d.status_code) for d in deliveries}
        assert (f"{url}/hook", "user.deleted", 200) in by_endpoint
        assert [d.error for d in deliveries if d.endpoint is dead] == ["ConnectError"] * 2
        assert [r["type"] for r in received] == ["user.deleted"]
        body = json.loads(deliveries[0].body)
        assert set(body) >= {"data", "object", "type", "timestamp", "instance_id"}
        assert len(secrets_by_endpoint) == 2


def test_banning_revokes_the_sessions_and_both_ban_and_unban_deliver_user_updated() -> None:
    app, received = receiver()
    with FakeClerk().serve() as fake:
        endpoint = fake.add_webhook_endpoint(app, path="/hook")
        app.dependency_overrides[get_settings] = lambda: ClerkSettings(
            webhook_signing_secret=endpoint.secret
        )
        user = fake.create_user(email_address="b@example.com")
        session = fake.create_session(user["id"])
        assert fake.ban_user(user["id"])["banned"] is True
        assert fake.get_session(session["id"])["status"] == "revoked"
        auth = {"Authorization": f"Bearer {fake.secret_key}"}
        with httpx.Client(base_url=fake.base_url, headers=auth) as client:
            unbanned = client.post(f"/v1/users/{user['id']}/unban").json()
            assert client.post("/v1/users/user_nobody/ban").status_code == 404
    assert unbanned["banned"] is False and unbanned["id"] == user["id"]
    assert fake.get_user(user["id"])["banned"] is False
    assert fake.get_session(session["id"])["status"] == "revoked"  # an unban revives nothing
    assert [(r["type"], r["data"]["banned"]) for r in received] == [
        ("user.updated", True),
        ("user.updated", False),
    ]
    assert received[0]["data"]["email_addresses"][0]["email_address"] == "b@example.com"
