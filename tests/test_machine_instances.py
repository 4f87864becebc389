"""Machine dependencies bound to a ClerkAuth: one instance, several (JWTs routed by iss)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from clerk_deps import ClerkAuth, MachineAuth, require_clerk_auth, require_machine
from clerk_deps.testing import FakeClerk, TestIssuer
from clerk_deps.testing.issuer import shared_private_key

PROD = TestIssuer(issuer="https://clerk.prod.example", kid="ins_prod")
STAGING = TestIssuer(
    issuer="https://staging.clerk.accounts.dev",
    kid="ins_staging",
    private_key=shared_private_key(1),
)


pytestmark = pytest.mark.usefixtures("fresh_machine_state")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeClerk]:
    with FakeClerk().serve() as fake:
        yield fake


def app_for(clerk: ClerkAuth) -> FastAPI:
    app = FastAPI()
    machine = require_machine(auth=clerk)
    either = require_clerk_auth(["session_token", "m2m_token", "api_key"], auth=clerk)

    @app.get("/machine")
    async def route(auth: MachineAuth = Depends(machine)) -> dict[str, Any]:  # noqa: B008
        return {"subject": auth.subject, "type": auth.token_type.value}

    @app.get("/either")
    async def both(auth: Any = Depends(either)) -> dict[str, Any]:  # noqa: B008
        return {"who": getattr(auth, "sub", None) or auth.subject}

    return app


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_jwt_machine_tokens_are_routed_by_iss() -> None:
    clerk = ClerkAuth([PROD.settings(), STAGING.settings()])
    with TestClient(app_for(clerk)) as client:
        for issuer in (PROD, STAGING):
            response = client.get("/machine", headers=bearer(issuer.m2m_token("mch_a")))
            assert response.json() == {"subject": "mch_a", "type": "m2m_token"}, response.text
            assert client.get("/either", headers=bearer(issuer.token("user_b"))).json() == {
                "who": "user_b"
            }
        # Signed by staging's key but claiming prod's issuer: prod's key does not verify it.
        forged = STAGING.m2m_token(iss=PROD.issuer)
        response = client.get("/machine", headers=bearer(forged))
        assert response.json()["detail"]["reason"] in (
            "token-invalid-signature",
            "jwk-kid-mismatch",
        )
        stranger = TestIssuer(issuer="https://other.example").oauth_token()
        response = client.get("/machine", headers=bearer(stranger))
        assert response.json()["detail"]["reason"] == "token-invalid-issuer"


def test_opaque_tokens_go_to_the_first_instance(fake: FakeClerk) -> None:
    clerk = ClerkAuth([fake.settings(), STAGING.settings()])
    key = fake.create_api_key("org_first")
    with TestClient(app_for(clerk)) as client:
        assert (
            client.get("/machine", headers=bearer(key["secret"])).json()["subject"] == "org_first"
        )
        assert client.get("/machine").json()["detail"]["reason"] == "session-token-missing"
    other = ClerkAuth([STAGING.settings(), fake.settings()])
    with TestClient(app_for(other)) as client:
        response = client.get("/machine", headers=bearer(key["secret"]))
        assert (response.status_code, response.json()["detail"]["reason"]) == (
            500,
            "auth-not-configured",
        )


def test_one_instance_in_code(fake: FakeClerk) -> None:
    clerk = ClerkAuth(fake.settings())
    key = fake.create_api_key("user_one")
    jwt = fake.create_m2m_token(token_format="jwt")["token"]
    with TestClient(app_for(clerk)) as client:
        assert client.get("/machine", headers=bearer(key["secret"])).json()["subject"] == "user_one"
        assert client.get("/machine", headers=bearer(jwt)).json()["type"] == "m2m_token"


def test_the_default_instance_follows_the_apps_settings(fake: FakeClerk) -> None:
    from clerk_deps import get_settings

    app = app_for(ClerkAuth())
    app.dependency_overrides[get_settings] = fake.settings
    key = fake.create_api_key("org_dyn")
    with TestClient(app) as client:
        assert client.get("/machine", headers=bearer(key["secret"])).json()["subject"] == "org_dyn"
        token = fake.session_token(fake.create_session(fake.create_user()["id"])["id"])
        assert client.get("/either", headers=bearer(token)).status_code == 200


def test_override_machine_for_one_auth_object() -> None:
    from clerk_deps.testing import override_machine

    clerk, other = ClerkAuth(PROD.settings()), ClerkAuth(STAGING.settings())
    app, unrelated = app_for(clerk), app_for(other)
    with override_machine(app, auth=clerk, subject="mch_o", token_type="m2m_token"):
        with TestClient(app) as client:
            assert client.get("/machine").json()["subject"] == "mch_o"
        with override_machine(unrelated, auth=clerk), TestClient(unrelated) as client:
            assert client.get("/machine").status_code == 401  # bound to another ClerkAuth
