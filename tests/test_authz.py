"""Authorization dependencies over real HTTP: org role and permission, billing, step-up."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from clerk_deps import (
    AUTH_RESPONSES,
    ClerkAuthError,
    ClerkClaims,
    CurrentUserDep,
    clerk_error_handler,
    get_settings,
    require_clerk_user,
    require_feature,
    require_org_permission,
    require_org_role,
    require_plan,
    require_reverification,
)
from clerk_deps.testing import TestIssuer, sign_jwt

ISSUER = TestIssuer()

AdminDep = Annotated[ClerkClaims, Depends(require_org_role("admin"))]

# Step-up routes: /step/<column>, in the column order of the fva table below.
STEP_UPS: dict[str, Callable[..., Any]] = {
    "strict_mfa": require_reverification("strict_mfa"),
    "strict": require_reverification("strict"),
    "moderate": require_reverification("moderate"),
    "lax": require_reverification("lax"),
    "first_5": require_reverification(level="first_factor", after_minutes=5),
    "second_5": require_reverification(level="second_factor", after_minutes=5),
    "multi_5": require_reverification(level="multi_factor", after_minutes=5),
}


def build_app() -> FastAPI:
    app = FastAPI()
    router = APIRouter(responses=AUTH_RESPONSES)

    @router.get("/admin")
    async def admin(user: CurrentUserDep, same: AdminDep, request: Request) -> dict[str, Any]:
        stored = getattr(request.state, "clerk_user", user)
        return {"sub": same.sub, "same": same is user and stored is user}

    @router.get("/admin-prefixed", dependencies=[Depends(require_org_role("org:admin"))])
    async def admin_prefixed() -> dict[str, bool]:
        return {"ok": True}

    @router.delete(
        "/projects/{id}", dependencies=[Depends(require_org_permission("org:projects:delete"))]
    )
    async def delete_project(id: str) -> dict[str, str]:
        return {"deleted": id}

    @router.get("/dashboard", dependencies=[Depends(require_feature("dashboard"))])
    async def dashboard() -> dict[str, bool]:
        return {"ok": True}

    @router.get("/org-dashboard", dependencies=[Depends(require_feature("o:dashboard"))])
    async def org_dashboard() -> dict[str, bool]:
        return {"ok": True}

    @router.get("/pro", dependencies=[Depends(require_plan("pro"))])
    async def pro() -> dict[str, bool]:
        return {"ok": True}

    @router.post("/payouts")
    async def payout(
        user: Annotated[ClerkClaims, Depends(require_reverification("strict"))],
    ) -> dict[str, str]:
        return {"paid_by": user.sub}

    for name, step_up in STEP_UPS.items():
        router.add_api_route(f"/step/{name}", _ok, dependencies=[Depends(step_up)])

    app.include_router(router)

    @app.websocket("/ws/admin")
    async def ws_admin(websocket: WebSocket, user: AdminDep) -> None:
        await websocket.accept()
        await websocket.send_json({"sub": user.sub})
        await websocket.close()

    @app.websocket("/ws/payouts")
    async def ws_payouts(
        websocket: WebSocket,
        user: Annotated[ClerkClaims, Depends(require_reverification("strict"))],
    ) -> None:
        await websocket.accept()
        await websocket.close()

    return app


async def _ok() -> dict[str, bool]:
    return {"ok": True}


@pytest.fixture
def app() -> FastAPI:
    app = build_app()
    app.dependency_overrides[get_settings] = ISSUER.settings
    return app


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


def token(**claims: Any) -> str:
    """A v2 session token with exactly these extra claims (``None`` removes one)."""
    payload = ISSUER.claims("user_1")
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    return sign_jwt(ISSUER.header(), payload, ISSUER.private_key)


def auth(**claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(**claims)}"}


# fea + o.per + o.fpm for: dashboard read; projects read (member) or read + delete (admin).
def org_claims(role: str, projects_mask: str = "1", **o: Any) -> dict[str, Any]:
    return {
        "fea": "o:dashboard,o:projects",
        "o": {
            "id": "org_1",
            "slg": "acme",
            "rol": role,
            "per": "read,delete",
            "fpm": f"1,{projects_mask}",
            **o,
        },
    }


ADMIN = org_claims("admin", "3")
MEMBER = org_claims("member")
V1_ADMIN = {
    "v": 1,
    "org_id": "org_1",
    "org_slug": "acme",
    "org_role": "org:admin",
    "org_permissions": ["org:dashboard:read", "org:projects:read", "org:projects:delete"],
}


def detail(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return body["detail"]


# -- organization ----------------------------------------------------------------------------


@pytest.mark.parametrize("claims", [ADMIN, V1_ADMIN], ids=["v2", "v1"])
def test_admin_passes_and_gets_the_same_claims(client: TestClient, claims: dict[str, Any]) -> None:
    assert client.get("/admin", headers=auth(**claims)).json() == {"sub": "user_1", "same": True}
    assert client.get("/admin-prefixed", headers=auth(**claims)).status_code == 200
    assert client.delete("/projects/p1", headers=auth(**claims)).json() == {"deleted": "p1"}


def test_member_is_refused_with_the_role_it_has(client: TestClient) -> None:
    for path in ("/admin", "/admin-prefixed"):
        response = client.get(path, headers=auth(**MEMBER))
        assert response.status_code == 403
        assert response.json() == {
            "detail": {
                "reason": "org-role-required",
                "message": "requires org role org:admin; "
                "the active organization role is org:member",
            }
        }
        assert "www-authenticate" not in response.headers


def test_missing_permission(client: TestClient) -> None:
    response = client.delete("/projects/p1", headers=auth(**MEMBER))
    assert response.status_code == 403
    assert detail(response) == {
        "reason": "org-permission-required",
        "message": "requires permission org:projects:delete; the role org:member in the "
        "active organization lacks it",
    }


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"fea": "o:dashboard,o:projects"}, id="no o claim"),
        pytest.param({**ADMIN, "o": {**ADMIN["o"], "id": None}}, id="o without id"),
        pytest.param({"v": 1, "org_role": "org:admin"}, id="v1 role without org_id"),
    ],
)
def test_no_active_organization_fails_every_org_route(
    client: TestClient, claims: dict[str, Any]
) -> None:
    headers = auth(**claims)
    role = client.get("/admin", headers=headers)
    permission = client.delete("/projects/p1", headers=headers)
    assert (role.status_code, permission.status_code) == (403, 403)
    assert detail(role)["reason"] == "org-role-required"
    assert detail(permission)["reason"] == "org-permission-required"
    for response in (role, permission):
        assert "no active organization" in detail(response)["message"]


def test_role_without_a_role_claim(client: TestClient) -> None:
    claims = {**ADMIN, "o": {"id": "org_1", "per": "read", "fpm": "1,1"}}
    response = client.get("/admin", headers=auth(**claims))
    assert response.status_code == 403
    assert detail(response)["message"].endswith("has no role in the active organization")


def test_authentication_comes_first(client: TestClient) -> None:
    for response in (client.get("/admin"), client.get("/pro"), client.post("/payouts")):
        assert response.status_code == 401
        assert detail(response)["reason"] == "session-token-missing"
    forged = ISSUER.forged_token(**ADMIN)
    response = client.get("/admin", headers={"Authorization": f"Bearer {forged}"})
    assert (response.status_code, detail(response)["reason"]) == (401, "token-invalid-signature")


# -- billing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fea", "any_scope", "org_scope"),
    [
        ("o:dashboard", 200, 200),
        ("u:dashboard", 200, 403),
        ("uo:dashboard", 200, 200),
        ("u:export,o:dashboard", 200, 200),
        ("u:export", 403, 403),
        ("dashboard", 403, 403),
        (None, 403, 403),
    ],
)
def test_feature_scopes(
    client: TestClient, fea: str | None, any_scope: int, org_scope: int
) -> None:
    headers = auth(fea=fea)
    assert client.get("/dashboard", headers=headers).status_code == any_scope
    assert client.get("/org-dashboard", headers=headers).status_code == org_scope


def test_feature_refusal_message(client: TestClient) -> None:
    response = client.get("/org-dashboard", headers=auth(fea="u:dashboard"))
    assert detail(response) == {
        "reason": "feature-required",
        "message": "requires feature 'dashboard' for the organization; the session's fea is "
        "'u:dashboard'",
    }
    missing = client.get("/dashboard", headers=auth(fea=None))
    assert "no fea claim" in detail(missing)["message"]


@pytest.mark.parametrize(
    ("pla", "status"),
    [("u:pro", 200), ("o:pro", 200), ("u:free", 403), ("u:free,o:pro", 200), (None, 403)],
)
def test_plan(client: TestClient, pla: str | None, status: int) -> None:
    response = client.get("/pro", headers=auth(pla=pla))
    assert response.status_code == status
    if status == 403:
        assert detail(response)["reason"] == "plan-required"
        assert detail(response)["message"].startswith("requires plan 'pro'; ")


# -- reverification --------------------------------------------------------------------------

# P = passes, F = 403, per column of STEP_UPS: strict_mfa (multi 10), strict (second 10),
# moderate (second 60), lax (second 1440), first_factor 5, second_factor 5, multi_factor 5.
FVA_TABLE = [
    ([0, 0], "PPPPPPP"),
    ([0, -1], "PPPPPPP"),
    ([7, -1], "PPPPFFF"),
    ([9, 9], "PPPPFFF"),
    ([4, 5], "PPPPPFF"),
    ([5, 0], "PPPPFPF"),
    ([10, -1], "FFPPFFF"),
    ([10, 10], "FFPPFFF"),
    ([0, 10], "FFPPPFF"),
    ([30, 2], "FPPPFPF"),
    ([-1, 2], "FPPPFPF"),
    ([1439, -1], "FFFPFFF"),
    ([-1, 1439], "FFFPFFF"),
    ([1440, 0], "FPPPFPF"),
    ([0, 1440], "FFFFPFF"),
    ([-1, -1], "FFFFFFF"),
    (None, "FFFFFFF"),
    ([], "FFFFFFF"),
    ([0], "FFFFFFF"),
    ([0, 0, 0], "FFFFFFF"),
    (["0", "0"], "FFFFFFF"),
    ([0.5, 0], "FFFFFFF"),
    ([True, 0], "FFFFFFF"),
    ([-2, 0], "FFFFFFF"),
    ([0, -5], "FFFFFFF"),
    ([0, None], "FFFFFFF"),
    ("0,0", "FFFFFFF"),
    ({"first": 0, "second": 0}, "FFFFFFF"),
]


@pytest.mark.parametrize(("fva", "expected"), FVA_TABLE, ids=[str(row[0]) for row in FVA_TABLE])
def test_fva_table(client: TestClient, fva: Any, expected: str) -> None:
    headers = auth(fva=fva)
    outcomes = ""
    for name in STEP_UPS:
        response = client.get(f"/step/{name}", headers=headers)
        assert response.status_code in (200, 403), response.text
        if response.status_code == 403:
            assert detail(response)["reason"] == "reverification-required"
        outcomes += "P" if response.status_code == 200 else "F"
    assert outcomes == expected


def test_reverification_body_without_handler(client: TestClient) -> None:
    response = client.post("/payouts", headers=auth(fva=[0, 25]))
    assert response.status_code == 403
    assert response.json() == {
        "detail": {
            "reason": "reverification-required",
            "message": "requires reverification: second_factor within the last 10 min; "
            "first factor verified 0 min ago, second factor verified 25 min ago",
            "clerk_error": {
                "type": "forbidden",
                "reason": "reverification-error",
                "metadata": {"reverification": {"level": "second_factor", "afterMinutes": 10}},
            },
        }
    }


def test_reverification_body_with_handler_is_clerks_byte_for_byte(app: FastAPI) -> None:
    app.add_exception_handler(ClerkAuthError, clerk_error_handler)
    response = TestClient(app).post("/payouts", headers=auth(fva=None))
    expected = {
        "clerk_error": {
            "type": "forbidden",
            "reason": "reverification-error",
            "metadata": {"reverification": {"level": "second_factor", "afterMinutes": 10}},
        }
    }
    assert response.status_code == 403
    assert response.content == json.dumps(expected, separators=(",", ":")).encode()
    assert response.headers["content-type"] == "application/json"


def test_custom_level_in_the_clerk_body(app: FastAPI) -> None:
    app.add_exception_handler(ClerkAuthError, clerk_error_handler)
    response = TestClient(app).get("/step/multi_5", headers=auth(fva=[0, 6]))
    assert response.content == (
        b'{"clerk_error":{"type":"forbidden","reason":"reverification-error",'
        b'"metadata":{"reverification":{"level":"multi_factor","afterMinutes":5}}}}'
    )


@pytest.mark.parametrize(
    ("method", "path", "claims", "reason"),
    [
        ("GET", "/admin", MEMBER, "org-role-required"),
        ("DELETE", "/projects/p1", MEMBER, "org-permission-required"),
        ("GET", "/dashboard", {"fea": "u:export"}, "feature-required"),
        ("GET", "/pro", {"pla": "u:free"}, "plan-required"),
    ],
)
def test_other_403_bodies_are_the_same_with_the_handler(
    client: TestClient,
    app: FastAPI,
    method: str,
    path: str,
    claims: dict[str, Any],
    reason: str,
) -> None:
    headers = auth(**claims)
    without = client.request(method, path, headers=headers)
    app.add_exception_handler(ClerkAuthError, clerk_error_handler)
    with_handler = TestClient(app).request(method, path, headers=headers)
    assert without.status_code == with_handler.status_code == 403
    assert without.json() == with_handler.json()
    assert list(with_handler.json()) == ["detail"]
    assert with_handler.json()["detail"]["reason"] == reason


# -- overriding require_clerk_user -----------------------------------------------------------


def test_one_override_of_require_clerk_user_covers_every_factory(app: FastAPI) -> None:
    admin = ClerkClaims(
        sub="user_override",
        iat=1,
        exp=2,
        org_id="org_1",
        org_role="admin",
        org_permissions=["org:projects:delete"],
        fea="o:dashboard",
        pla="o:pro",
        fva=(0, -1),
    )
    app.dependency_overrides[require_clerk_user] = lambda: admin
    client = TestClient(app)
    assert client.get("/admin").json() == {"sub": "user_override", "same": True}
    assert client.delete("/projects/p9").json() == {"deleted": "p9"}
    assert client.get("/org-dashboard").status_code == 200
    assert client.get("/pro").status_code == 200
    assert client.post("/payouts").json() == {"paid_by": "user_override"}


def test_an_override_can_also_fail_a_route(app: FastAPI) -> None:
    member = ClerkClaims(sub="user_member", iat=1, exp=2, org_id="org_1", org_role="member")
    app.dependency_overrides[require_clerk_user] = lambda: member
    client = TestClient(app)
    assert detail(client.get("/admin"))["reason"] == "org-role-required"
    assert detail(client.post("/payouts"))["reason"] == "reverification-required"
    assert detail(client.get("/pro"))["reason"] == "plan-required"


# -- definition time -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: require_org_role(""), ValueError),
        (lambda: require_org_role("org:"), ValueError),
        (lambda: require_org_role(" admin"), ValueError),
        (lambda: require_org_role(None), TypeError),
        (lambda: require_org_permission("delete"), ValueError),
        (lambda: require_org_permission("org:projects"), ValueError),
        (lambda: require_org_permission(""), ValueError),
        (lambda: require_feature(""), ValueError),
        (lambda: require_feature("x:dashboard"), ValueError),
        (lambda: require_feature("o:"), ValueError),
        (lambda: require_plan(3), TypeError),
        (lambda: require_reverification("paranoid"), ValueError),
        (lambda: require_reverification("strict", after_minutes=5), ValueError),
        (lambda: require_reverification(level="second_factor"), ValueError),
        (lambda: require_reverification(level="second_factor", after_minutes=0), ValueError),
        (lambda: require_reverification(level="second_factor", after_minutes=-5), ValueError),
        (lambda: require_reverification(level="first_factor", after_minutes=1.5), TypeError),
        (lambda: require_reverification(level="first_factor", after_minutes=True), TypeError),
        (lambda: require_reverification(level=None), ValueError),
    ],
)
def test_invalid_arguments_fail_when_the_route_is_defined(
    make: Callable[[], Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        make()


def test_dependencies_have_readable_names() -> None:
    assert require_org_role("admin").__name__ == "require_org_role('org:admin')"
    assert require_org_permission("projects:delete").__qualname__ == (
        "require_org_permission('org:projects:delete')"
    )
    assert require_feature("o:dashboard").__name__ == "require_feature('o:dashboard')"
    assert require_plan("pro").__name__ == "require_plan('pro')"
    assert require_reverification().__name__ == "require_reverification('strict')"
    custom = require_reverification(level="first_factor", after_minutes=30)
    assert custom.__name__ == "require_reverification(level='first_factor', after_minutes=30)"


# -- WebSocket and OpenAPI -------------------------------------------------------------------


def test_websocket_passes_with_the_role(client: TestClient) -> None:
    with client.websocket_connect("/ws/admin", headers=auth(**ADMIN)) as websocket:
        assert websocket.receive_json() == {"sub": "user_1"}


@pytest.mark.parametrize(
    ("path", "claims", "reason"),
    [
        ("/ws/admin", MEMBER, "org-role-required"),
        ("/ws/admin", {}, "org-role-required"),
        ("/ws/payouts", {"fva": [0, 60]}, "reverification-required"),
    ],
)
def test_websocket_403_refuses_the_handshake_with_the_reason(
    client: TestClient, path: str, claims: dict[str, Any], reason: str
) -> None:
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        client.websocket_connect(path, headers=auth(**claims)),
    ):
        pass  # pragma: no cover - the handshake is refused
    assert refused.value.status_code == 403
    assert refused.value.json()["detail"]["reason"] == reason


def test_openapi_documents_401_and_403_with_the_error_body(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    error_ref = "#/components/schemas/ClerkErrorResponse"
    clerk_ref = "#/components/schemas/ClerkReverificationResponse"
    for path, method in [("/admin", "get"), ("/projects/{id}", "delete"), ("/payouts", "post")]:
        operation = document["paths"][path][method]
        responses = operation["responses"]
        assert responses["401"]["content"]["application/json"]["schema"] == {"$ref": error_ref}
        assert "WWW-Authenticate" in responses["401"]["headers"]
        any_of = responses["403"]["content"]["application/json"]["schema"]["anyOf"]
        assert {"$ref": error_ref} in any_of and {"$ref": clerk_ref} in any_of
        assert operation["security"] == [{"ClerkSession": []}]
    detail_schema = schemas["ClerkErrorDetail"]
    assert set(detail_schema["required"]) == {"reason", "message"}
    assert "org-role-required" in schemas["ErrorReason"]["enum"]
    requirement = schemas["ClerkReverificationRequirement"]
    assert set(requirement["required"]) == {"level", "afterMinutes"}
