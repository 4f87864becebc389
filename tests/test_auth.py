"""ClerkAuth with one instance: configuration in code, no per-request look-ups, binding of the
authorization factories, the module-level defaults, start-up and the testing kit."""

import asyncio
import logging
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

import clerk_deps.instances
from clerk_deps import (
    ClerkAuth,
    ClerkAuthError,
    ClerkClaims,
    ClerkSettings,
    clerk_lifespan,
    get_settings,
    optional_clerk_user,
    require_clerk_user,
    require_clerk_user_with_email,
    require_org_role,
    require_plan,
    require_reverification,
)
from clerk_deps.auth import default_auth
from clerk_deps.testing import TestIssuer, override_clerk_settings, override_clerk_user

ISSUER = TestIssuer()
OTHER = TestIssuer(issuer="https://other.clerk.test")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_app(clerk: ClerkAuth, **app_options: Any) -> FastAPI:
    app = FastAPI(**app_options)

    @app.get("/me")
    async def me(user: Annotated[ClerkClaims, Depends(clerk.user)]) -> dict[str, Any]:
        return {"sub": user.sub, "iss": user.iss}

    @app.get("/maybe")
    async def maybe(
        user: Annotated[ClerkClaims | None, Depends(clerk.optional_user)],
    ) -> dict[str, Any]:
        return {"sub": user.sub if user else None}

    @app.get("/admin")
    async def admin(
        user: Annotated[ClerkClaims, Depends(require_org_role("admin", auth=clerk))],
    ) -> dict[str, Any]:
        return {"sub": user.sub}

    @app.get("/pro")
    async def pro(
        user: Annotated[ClerkClaims, Depends(require_plan("pro", auth=clerk))],
    ) -> dict[str, Any]:
        return {"sub": user.sub}

    @app.get("/email")
    async def email(
        user: Annotated[ClerkClaims, Depends(clerk.user_with_email)],
    ) -> dict[str, Any]:
        return {"email": user.email}

    return app


@pytest.fixture
def clerk() -> ClerkAuth:
    return ClerkAuth(ISSUER.settings())


@pytest.fixture
def client(clerk: ClerkAuth) -> Iterator[TestClient]:
    with TestClient(make_app(clerk)) as client:
        yield client


# -- configuration in code ---------------------------------------------------------------


def test_clerk_auth_verifies_with_its_own_settings(client: TestClient) -> None:
    # No CLERK_* variable is set and no dependency_overrides: the settings given in code rule.
    response = client.get("/me", headers=bearer(ISSUER.token("user_1")))
    assert response.status_code == 200
    assert response.json() == {"sub": "user_1", "iss": ISSUER.issuer}
    assert client.app.dependency_overrides == {}  # type: ignore[attr-defined]

    refused = client.get("/me", headers=bearer(OTHER.token()))
    assert refused.status_code == 401
    assert refused.json()["detail"]["reason"] == "token-invalid-issuer"
    missing = client.get("/me")
    assert missing.json()["detail"]["reason"] == "session-token-missing"


def test_get_settings_override_does_not_reach_a_configured_instance(
    client: TestClient,
) -> None:
    client.app.dependency_overrides[get_settings] = OTHER.settings  # type: ignore[attr-defined]
    assert client.get("/me", headers=bearer(ISSUER.token())).status_code == 200
    assert client.get("/me", headers=bearer(OTHER.token())).status_code == 401


def test_key_source_and_token_cache_are_looked_up_once_per_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[ClerkSettings] = []
    real = clerk_deps.instances.prepared_for

    def counting(settings: ClerkSettings) -> Any:
        calls.append(settings)
        return real(settings)

    monkeypatch.setattr(clerk_deps.instances, "prepared_for", counting)
    clerk = ClerkAuth(ISSUER.settings())
    with TestClient(make_app(clerk)) as client:
        for _ in range(5):
            assert client.get("/me", headers=bearer(ISSUER.token())).status_code == 200
        assert client.get("/me", headers=bearer(ISSUER.forged_token())).status_code == 401
    assert len(calls) == 1


def test_optional_user(client: TestClient) -> None:
    assert client.get("/maybe").json() == {"sub": None}
    assert client.get("/maybe", headers=bearer(ISSUER.token("u2"))).json() == {"sub": "u2"}
    bad = client.get("/maybe", headers=bearer(ISSUER.expired_token()))
    assert bad.status_code == 401
    assert bad.json()["detail"]["reason"] == "token-expired"


def test_claims_are_stored_on_request_state(clerk: ClerkAuth) -> None:
    app = FastAPI()

    @app.get("/seen")
    async def seen(request: Request, user: Annotated[ClerkClaims, Depends(clerk.user)]) -> str:
        return str(request.state.clerk_user.sub)

    with TestClient(app) as client:
        assert client.get("/seen", headers=bearer(ISSUER.token("u3"))).json() == "u3"


def test_factories_bind_to_the_instance(client: TestClient) -> None:
    member = ISSUER.token(org_role="member")
    admin = ISSUER.token(org_role="admin", pla="u:pro")
    assert client.get("/admin", headers=bearer(admin)).status_code == 200
    refused = client.get("/admin", headers=bearer(member))
    assert refused.status_code == 403
    assert refused.json()["detail"]["reason"] == "org-role-required"
    assert client.get("/pro", headers=bearer(admin)).status_code == 200
    assert client.get("/pro", headers=bearer(member)).json()["detail"]["reason"] == "plan-required"
    # authentication comes from the bound instance: another issuer's token is a 401
    assert client.get("/admin", headers=bearer(OTHER.token(org_role="admin"))).status_code == 401


def test_openapi_shows_the_bearer_scheme(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["ClerkSession"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert scheme["bearerFormat"] == "JWT"
    for path in ("/me", "/maybe", "/admin", "/email"):
        assert document["paths"][path]["get"]["security"] == [{"ClerkSession": []}]


async def test_verify_and_settings_for() -> None:
    settings = ISSUER.settings()
    clerk = ClerkAuth(settings)
    claims = await clerk.verify(ISSUER.token("user_v"))
    assert claims.sub == "user_v"
    assert await clerk.settings_for(None, "anything") is settings
    assert await clerk.settings_for(None, claims) is settings
    assert clerk.settings == (settings,)
    assert await clerk.all_settings() == (settings,)
    assert ClerkAuth([settings]).settings == (settings,)
    assert "clerk.test.example" in repr(clerk)


async def test_default_instance_reads_get_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_JWT_KEY", ISSUER.public_pem)
    monkeypatch.setenv("CLERK_ISSUER", ISSUER.issuer)
    claims = await default_auth.verify(ISSUER.token("user_env"))
    assert claims.sub == "user_env"
    assert (await default_auth.settings_for(None, "x")) is get_settings()
    assert (await default_auth.all_settings()) == (get_settings(),)
    assert default_auth.settings == ()
    assert "get_settings" in repr(default_auth)


def test_construction_errors() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ClerkAuth([])
    with pytest.raises(TypeError, match="not ClerkSettings"):
        ClerkAuth([ISSUER.settings(), {"issuer": "x"}])  # type: ignore[list-item]


# -- the module-level dependencies are the default ClerkAuth -------------------------------


def test_module_level_names_are_the_default_instance() -> None:
    assert require_clerk_user is default_auth.user
    assert optional_clerk_user is default_auth.optional_user
    assert require_clerk_user_with_email is default_auth.user_with_email
    assert repr(require_clerk_user) == "require_clerk_user"
    assert default_auth.user_dependencies() == (
        require_clerk_user,
        optional_clerk_user,
        require_clerk_user_with_email,
    )


def test_overriding_require_clerk_user_still_covers_the_default_factories() -> None:
    app = FastAPI()

    @app.get("/step-up")
    async def step_up(
        user: Annotated[ClerkClaims, Depends(require_reverification("strict"))],
    ) -> str:
        return user.sub

    app.dependency_overrides[require_clerk_user] = lambda: ClerkClaims(
        sub="user_o", iat=0, exp=2**40, fva=(0, 0)
    )
    with TestClient(app) as client:
        assert client.get("/step-up").json() == "user_o"


# -- the testing kit ------------------------------------------------------------------------


def test_override_clerk_user_covers_every_dependency_of_an_instance(clerk: ClerkAuth) -> None:
    app = make_app(clerk)
    with (
        TestClient(app) as client,
        override_clerk_user(app, auth=clerk, sub="user_k", org_role="admin", email="k@example.com"),
    ):
        assert client.get("/me").json()["sub"] == "user_k"
        assert client.get("/maybe").json() == {"sub": "user_k"}
        assert client.get("/admin").json() == {"sub": "user_k"}
        assert client.get("/email").json() == {"email": "k@example.com"}
    assert app.dependency_overrides == {}


def test_override_clerk_settings_of_an_instance() -> None:
    clerk = ClerkAuth(OTHER.settings())
    app = make_app(clerk)
    with TestClient(app) as client:
        assert client.get("/me", headers=bearer(ISSUER.token())).status_code == 401
        with override_clerk_settings(app, ISSUER.settings(), auth=clerk):
            assert client.get("/me", headers=bearer(ISSUER.token())).status_code == 200
            assert client.get("/admin", headers=bearer(ISSUER.token(org_role="admin"))).json()
        assert client.get("/me", headers=bearer(ISSUER.token())).status_code == 401
    with (
        pytest.raises(TypeError, match="auth="),
        override_clerk_settings(app, [ISSUER.settings(), OTHER.settings()]),
    ):
        pass  # pragma: no cover


# -- start-up ---------------------------------------------------------------------------------


def _protected_app(lifespan: Any, dependency: Any) -> FastAPI:
    app = FastAPI(lifespan=lifespan)

    @app.get("/me")
    async def me(user: Annotated[ClerkClaims, Depends(dependency)]) -> str:
        return user.sub

    return app


@pytest.mark.parametrize("kind", ["module-level", "ClerkAuth()", "ClerkAuth(settings)"])
@pytest.mark.parametrize("override_first", [True, False])
def test_start_up_with_an_overridden_user_needs_no_configuration(
    kind: str,
    override_first: bool,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env, no CLERK_* variable (conftest removes them)
    if kind == "module-level":
        lifespan, dependency, auth = clerk_lifespan, require_clerk_user, None
    else:
        # settings built from an empty environment: nothing to verify with
        clerk = ClerkAuth() if kind == "ClerkAuth()" else ClerkAuth(ClerkSettings())
        lifespan, dependency, auth = clerk.lifespan, clerk.user, clerk
    app = _protected_app(lifespan, dependency)
    caplog.set_level(logging.ERROR, logger="clerk_deps")
    if override_first:
        with override_clerk_user(app, sub="user_t", auth=auth), TestClient(app) as client:
            assert client.get("/me").json() == "user_t"
        assert not caplog.records  # start-up did not even look at Clerk settings
    else:
        with TestClient(app) as client, override_clerk_user(app, sub="user_t", auth=auth):
            assert client.get("/me").json() == "user_t"


def test_start_up_without_configuration_logs_one_line(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    app = _protected_app(clerk_lifespan, require_clerk_user)
    caplog.set_level(logging.DEBUG, logger="clerk_deps")
    with TestClient(app) as client:
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1
        line = errors[0].getMessage()
        assert "\n" not in line and errors[0].exc_info is None
        for variable in ("CLERK_ISSUER", "CLERK_PUBLISHABLE_KEY", "CLERK_JWT_KEY"):
            assert variable in line
        response = client.get("/me", headers=bearer(ISSUER.token()))
        assert response.status_code == 500
        assert response.json()["detail"]["reason"] == "auth-not-configured"


def test_start_up_with_invalid_settings_still_stops(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLERK_ISSUER", "http://clerk.example.com")
    app = _protected_app(clerk_lifespan, require_clerk_user)
    with pytest.raises(Exception, match="CLERK_ISSUER"), TestClient(app):
        pass  # pragma: no cover


def test_lifespan_of_an_instance_loads_its_keys(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clerk = ClerkAuth(ISSUER.settings())
    app = _protected_app(clerk.lifespan, clerk.user)
    with TestClient(app) as client:
        assert client.get("/me", headers=bearer(ISSUER.token("u_l"))).json() == "u_l"


def test_test_issuer_plays_several_instances() -> None:
    one, two, three = TestIssuer.several(3)
    assert len({one.issuer, two.issuer, three.issuer}) == 3
    assert len({one.kid, two.kid, three.kid}) == 3
    assert len({one.public_pem, two.public_pem, three.public_pem}) == 3
    assert TestIssuer.several(1)[0].public_pem == one.public_pem  # keys are reused
    shared = TestIssuer.several(2, kid="ins_same")
    assert {i.kid for i in shared} == {"ins_same"}
    with pytest.raises(ValueError, match="at least 1"):
        TestIssuer.several(0)
    # a token for instance one signed by instance two's key (or any key)
    for signer in (two, two.private_key):
        forged = one.forged_token(signed_by=signer)
        assert forged.split(".")[0] == one.token().split(".")[0]  # one's header and kid
        with pytest.raises(ClerkAuthError) as refused:
            asyncio.run(ClerkAuth(one.settings()).verify(forged))
        assert refused.value.reason.value == "token-invalid-signature"
        verified = asyncio.run(ClerkAuth(two.settings(issuer=one.issuer)).verify(forged))
        assert verified.iss == one.issuer  # it is two's signature indeed


def test_a_get_settings_override_must_return_settings() -> None:
    app = _protected_app(None, require_clerk_user)
    app.dependency_overrides[get_settings] = lambda: {"issuer": ISSUER.issuer}
    with pytest.raises(TypeError, match="returned dict, not ClerkSettings"):
        TestClient(app).get("/me", headers=bearer(ISSUER.token()))
