"""The testing kit, from a user's side: TestIssuer, the overrides and the pytest plugin."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

import clerk_deps.testing.plugin as plugin_module
from clerk_deps import (
    ClerkAuthError,
    ClerkClaims,
    ClerkSettings,
    CurrentUserDep,
    CurrentUserWithEmailDep,
    ErrorReason,
    OptionalUserDep,
    get_settings,
    require_clerk_user,
    require_org_permission,
    require_org_role,
    require_reverification,
    verify_token,
)
from clerk_deps.keys import parse_key_set
from clerk_deps.testing import (
    SESSION_CATEGORY,
    TEMPLATE_CATEGORY,
    FakeClerk,
    TestIssuer,
    build_claims,
    override_clerk_settings,
    override_clerk_user,
)
from clerk_deps.testing.issuer import encode_organization, shared_private_key

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    def decode(part: str) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        return value

    header, payload, _ = token.split(".")
    return decode(header), decode(payload)


async def rejection(token: str, settings: ClerkSettings) -> ClerkAuthError:
    with pytest.raises(ClerkAuthError) as caught:
        await verify_token(token, settings)
    return caught.value


# -- TestIssuer: shape of the tokens ----------------------------------------------------


def test_token_header_is_a_clerk_session_header() -> None:
    issuer = TestIssuer(kid="ins_abc")
    header, _ = segments(issuer.token())
    assert header == {"alg": "RS256", "cat": SESSION_CATEGORY, "kid": "ins_abc", "typ": "JWT"}


def test_token_claims_have_clerk_v2_shape_and_lifetimes() -> None:
    issuer = TestIssuer(issuer="https://my-app.clerk.accounts.dev/")
    before = int(time.time())
    _, payload = segments(issuer.token("user_42"))
    after = int(time.time())
    assert payload["sub"] == "user_42"
    assert before <= payload["iat"] <= after
    assert payload["nbf"] == payload["iat"] - 10
    assert payload["exp"] == payload["iat"] + 60
    assert payload["iss"] == "https://my-app.clerk.accounts.dev"
    assert payload["v"] == 2
    assert payload["sid"].startswith("sess_")
    assert payload["fva"] == [0, -1]
    assert payload["jti"]
    assert not {"aud", "azp", "email", "o", "org_id"} & payload.keys()


def test_each_token_is_a_new_session_unless_sid_is_given() -> None:
    issuer = TestIssuer()
    first, second = segments(issuer.token())[1], segments(issuer.token())[1]
    assert first["sid"] != second["sid"]
    assert segments(issuer.token(sid="sess_fixed"))[1]["sid"] == "sess_fixed"


def test_keywords_add_and_replace_claims_and_none_removes_one() -> None:
    issuer = TestIssuer()
    _, payload = segments(
        issuer.token(
            "user_1",
            email="ada@example.com",
            azp="http://localhost:3000",
            fva=[3, 7],
            iss="https://elsewhere.example",
            tenant={"plan": "pro"},
            jti=None,
        )
    )
    assert payload["email"] == "ada@example.com"
    assert payload["azp"] == "http://localhost:3000"
    assert payload["fva"] == [3, 7]
    assert payload["iss"] == "https://elsewhere.example"
    assert payload["tenant"] == {"plan": "pro"}
    assert "jti" not in payload


def test_now_sets_the_issue_time() -> None:
    _, payload = segments(TestIssuer().token(now=1_700_000_000.9))
    assert (payload["iat"], payload["nbf"], payload["exp"]) == (
        1_700_000_000,
        1_699_999_990,
        1_700_000_060,
    )


def test_headers_keyword_edits_the_header() -> None:
    header, _ = segments(TestIssuer().token(headers={"cat": None, "typ": "at+jwt", "x": 1}))
    assert header == {"alg": "RS256", "kid": "ins_test_key", "typ": "at+jwt", "x": 1}


async def test_token_verifies_with_the_issuers_settings() -> None:
    issuer = TestIssuer()
    claims = await verify_token(
        issuer.token("user_9", email="ada@example.com", fva=[1, 2]), issuer.settings()
    )
    assert claims.sub == "user_9"
    assert claims.session_id is not None and claims.session_id.startswith("sess_")
    assert claims.email == "ada@example.com"
    assert claims.fva == (1, 2)
    assert claims.v == 2


async def test_a_token_without_sid_is_not_a_session_token() -> None:
    issuer = TestIssuer()
    error = await rejection(issuer.token(sid=None), issuer.settings())
    assert error.reason is ErrorReason.TOKEN_TYPE_MISMATCH


async def test_a_token_of_another_issuer_is_rejected() -> None:
    other = TestIssuer(issuer="https://other.clerk.accounts.dev")
    error = await rejection(other.token(), TestIssuer().settings())
    assert error.reason is ErrorReason.TOKEN_INVALID_ISSUER


# -- TestIssuer: organizations -------------------------------------------------------------


def test_org_permissions_are_encoded_as_in_clerks_example() -> None:
    # clerk-reference: fea="o:dashboard,o:teams", per="manage,read", fpm="3,2".
    _, payload = segments(
        TestIssuer().token(
            org_id="org_1",
            org_slug="acme",
            org_role="org:admin",
            org_permissions=["org:dashboard:manage", "org:dashboard:read", "org:teams:read"],
        )
    )
    assert payload["o"] == {
        "id": "org_1",
        "slg": "acme",
        "rol": "admin",
        "per": "manage,read",
        "fpm": "3,2",
    }
    assert payload["fea"] == "o:dashboard,o:teams"
    assert "org_id" not in payload


def test_org_features_come_first_and_other_features_get_a_zero_mask() -> None:
    claims = encode_organization(
        org_id="org_1", org_permissions=["teams:read"], fea="u:export,o:dashboard"
    )
    assert claims["fea"] == "o:dashboard,o:teams,u:export"
    assert claims["o"]["per"] == "read"
    assert claims["o"]["fpm"] == "0,1,0"


def test_org_without_permissions_keeps_fea_as_given() -> None:
    _, payload = segments(TestIssuer().token(org_role="member", fea="u:export"))
    assert payload["o"] == {"id": "org_test", "rol": "member"}
    assert payload["fea"] == "u:export"


def test_org_keywords_write_v1_claims_for_v1_tokens() -> None:
    _, payload = segments(
        TestIssuer().token(v=1, org_id="org_1", org_role="admin", org_permissions=["a:b"])
    )
    assert payload["org_id"] == "org_1"
    assert payload["org_role"] == "org:admin"
    assert payload["org_permissions"] == ["org:a:b"]
    assert "o" not in payload and payload["v"] == 1


async def test_org_claims_decode_to_the_same_organization() -> None:
    issuer = TestIssuer()
    permissions = ["org:dashboard:manage", "org:dashboard:read", "org:teams:read"]
    for version in (1, 2):
        claims = await verify_token(
            issuer.token(
                v=version,
                org_id="org_1",
                org_slug="acme",
                org_role="admin",
                org_permissions=permissions,
                fea="u:export",
            ),
            issuer.settings(),
        )
        assert claims.org_id == "org_1"
        assert claims.org_slug == "acme"
        assert claims.org_role == "org:admin"
        assert sorted(claims.org_permissions) == sorted(permissions)


def test_malformed_org_input_is_refused() -> None:
    with pytest.raises(ValueError, match="org:<feature>:<permission>"):
        TestIssuer().token(org_permissions=["read"])
    with pytest.raises(TypeError, match="either"):
        TestIssuer().token(org_role="admin", o={"id": "org_2"})


# -- TestIssuer: bad tokens ----------------------------------------------------------------


async def test_expired_token_is_rejected_as_expired() -> None:
    issuer = TestIssuer()
    _, payload = segments(issuer.expired_token("user_1", seconds_ago=300))
    assert payload["exp"] == pytest.approx(time.time() - 300, abs=2)
    error = await rejection(issuer.expired_token(), issuer.settings())
    assert error.reason is ErrorReason.TOKEN_EXPIRED
    assert error.status_code == 401


async def test_forged_token_has_the_right_kid_and_a_bad_signature() -> None:
    issuer = TestIssuer()
    forged = issuer.forged_token("user_1", email="eve@example.com")
    assert segments(forged)[0]["kid"] == issuer.kid
    assert segments(forged)[1]["sub"] == "user_1"
    error = await rejection(forged, issuer.settings())
    assert error.reason is ErrorReason.TOKEN_INVALID_SIGNATURE
    assert "eve@example.com" not in error.message


async def test_forged_token_differs_even_for_an_issuer_using_the_forgers_key() -> None:
    issuer = TestIssuer(private_key=shared_private_key(1))
    error = await rejection(issuer.forged_token(), issuer.settings())
    assert error.reason is ErrorReason.TOKEN_INVALID_SIGNATURE


async def test_template_token_needs_templates_to_be_accepted() -> None:
    issuer = TestIssuer()
    token = issuer.template_token("user_1", aud="https://api.example", lifetime=300)
    header, payload = segments(token)
    assert header["cat"] == TEMPLATE_CATEGORY
    assert not {"sid", "v", "fva"} & payload.keys()
    assert payload["exp"] - payload["iat"] == 300
    error = await rejection(token, issuer.settings())
    assert error.reason is ErrorReason.TOKEN_TYPE_MISMATCH
    claims = await verify_token(
        token, issuer.settings(accept_jwt_templates=True, audience="https://api.example")
    )
    assert claims.sub == "user_1"
    assert claims.sid is None


# -- TestIssuer: keys and settings ------------------------------------------------------------


def test_jwks_publishes_the_public_key_under_the_kid() -> None:
    issuer = TestIssuer(kid="ins_k1")
    (jwk,) = issuer.jwks()["keys"]
    assert {k: jwk[k] for k in ("kty", "alg", "use", "kid")} == {
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "kid": "ins_k1",
    }
    assert "=" not in jwk["n"] and "d" not in jwk
    key = parse_key_set(issuer.jwks())["ins_k1"]
    head, body, signature = issuer.token().split(".")
    assert key.verify(f"{head}.{body}".encode(), base64.urlsafe_b64decode(signature + "=="))


def test_keys_are_generated_once_per_process() -> None:
    assert TestIssuer().private_key is TestIssuer(issuer="https://b.example").private_key
    assert FakeClerk().kid == FakeClerk().kid


def test_repr_shows_no_key_material() -> None:
    text = repr(TestIssuer())
    assert text == "TestIssuer(issuer='https://clerk.test.example', kid='ins_test_key')"


def test_settings_trust_the_issuer_and_ignore_env_and_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CLERK_JWT_AUDIENCE=api\nCLERK_LEEWAY=0\n")
    monkeypatch.setenv("CLERK_ISSUER", "https://from-env.example")
    issuer = TestIssuer()
    settings = issuer.settings()
    assert settings.issuer == issuer.issuer
    assert settings.jwt_key == issuer.public_pem.strip()
    assert settings.audience is None and settings.leeway == 5.0
    # The same environment does reach ordinary settings, so the isolation is real.
    assert ClerkSettings().audience == "api"


def test_settings_take_overrides_and_refuse_unknown_fields() -> None:
    settings = TestIssuer().settings(leeway=0, authorized_parties=["http://localhost:3000"])
    assert settings.leeway == 0
    assert settings.authorized_parties == ["http://localhost:3000"]
    with pytest.raises(ValidationError):
        TestIssuer().settings(leeway_seconds=1)


async def require_staff(user: CurrentUserDep) -> ClerkClaims:
    """An app's own dependency built on ``CurrentUserDep`` (module level: FastAPI resolves the
    string annotations of ``from __future__ import annotations`` in module globals)."""
    return user


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/me")
    async def me(user: CurrentUserDep, request: Request) -> dict[str, Any]:
        return {
            "sub": user.sub,
            "sid": user.sid,
            "org_role": user.org_role,
            "state": request.state.clerk_user.sub,
        }

    @app.get("/maybe")
    async def maybe(user: OptionalUserDep) -> dict[str, Any]:
        return {"sub": user.sub if user else None}

    @app.get("/staff")
    async def staff(user: Annotated[ClerkClaims, Depends(require_staff)]) -> dict[str, str]:
        return {"sub": user.sub}

    @app.get("/admin", dependencies=[Depends(require_org_role("admin"))])
    async def admin() -> dict[str, str]:
        return {"ok": "admin"}

    @app.get("/invoices", dependencies=[Depends(require_org_permission("org:invoices:read"))])
    async def invoices() -> dict[str, str]:
        return {"ok": "invoices"}

    @app.get("/danger", dependencies=[Depends(require_reverification())])
    async def danger() -> dict[str, str]:
        return {"ok": "danger"}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, user: CurrentUserDep) -> None:
        await websocket.accept()
        await websocket.send_json({"sub": user.sub})
        await websocket.close()

    return app


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_issuer_settings_work_as_a_get_settings_override() -> None:
    app, issuer = make_app(), TestIssuer()
    app.dependency_overrides[get_settings] = issuer.settings
    client = TestClient(app)
    response = client.get("/me", headers=bearer(issuer.token("user_7", sid="sess_7")))
    assert response.status_code == 200
    assert response.json() == {
        "sub": "user_7",
        "sid": "sess_7",
        "org_role": None,
        "state": "user_7",
    }
    missing = client.get("/me")
    assert missing.status_code == 401
    assert missing.json()["detail"]["reason"] == "session-token-missing"
    expired = client.get("/me", headers=bearer(issuer.expired_token()))
    assert expired.json()["detail"]["reason"] == "token-expired"


def test_override_clerk_settings_points_an_app_at_an_issuer_and_restores() -> None:
    app, issuer = make_app(), TestIssuer()
    client = TestClient(app)
    token = issuer.token("user_3")
    with override_clerk_settings(app, issuer.settings()) as settings:
        assert settings.issuer == issuer.issuer
        assert client.get("/me", headers=bearer(token)).status_code == 200
    assert get_settings not in app.dependency_overrides
    unconfigured = client.get("/me", headers=bearer(token))
    assert unconfigured.status_code == 500
    assert unconfigured.json()["detail"]["reason"] == "auth-not-configured"


# -- override_clerk_user ------------------------------------------------------------------------


@pytest.fixture
def guarded_app() -> Iterator[tuple[FastAPI, TestClient]]:
    """An app whose real authentication is configured, so a missing override shows as 401."""
    app = make_app()
    app.dependency_overrides[get_settings] = TestIssuer().settings
    yield app, TestClient(app)


def test_override_signs_every_route_in_and_sets_request_state(
    guarded_app: tuple[FastAPI, TestClient],
) -> None:
    app, client = guarded_app
    with override_clerk_user(app, sub="user_1") as user:
        assert user.sub == "user_1" and user.sid == "sess_test"
        assert client.get("/me").json() == {
            "sub": "user_1",
            "sid": "sess_test",
            "org_role": None,
            "state": "user_1",
        }
        assert client.get("/maybe").json() == {"sub": "user_1"}
        assert client.get("/staff").json() == {"sub": "user_1"}
        with client.websocket_connect("/ws") as websocket:
            assert websocket.receive_json() == {"sub": "user_1"}
    assert client.get("/me").json()["detail"]["reason"] == "session-token-missing"
    assert client.get("/maybe").json() == {"sub": None}
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws") as websocket:
        websocket.receive_json()


def test_override_feeds_the_authorization_factories(
    guarded_app: tuple[FastAPI, TestClient],
) -> None:
    app, client = guarded_app
    with override_clerk_user(app, org_role="admin", org_permissions=["org:invoices:read"]):
        assert client.get("/me").json()["org_role"] == "org:admin"
        assert client.get("/admin").status_code == 200
        assert client.get("/invoices").status_code == 200
        assert client.get("/danger").status_code == 200  # fva (0, -1): just signed in
    with override_clerk_user(app, org_role="member", fva=(30, 30)):
        admin = client.get("/admin")
        assert admin.status_code == 403
        assert admin.json()["detail"]["reason"] == "org-role-required"
        assert client.get("/invoices").json()["detail"]["reason"] == "org-permission-required"
        assert client.get("/danger").status_code == 403


def test_override_restores_what_was_there_before(guarded_app: tuple[FastAPI, TestClient]) -> None:
    app, client = guarded_app

    def someone_else() -> ClerkClaims:
        return build_claims(sub="user_previous")

    app.dependency_overrides[require_clerk_user] = someone_else
    settings_override = app.dependency_overrides[get_settings]
    with override_clerk_user(app, sub="user_inner"):
        assert client.get("/staff").json() == {"sub": "user_inner"}
        with override_clerk_user(app, sub="user_nested"):
            assert client.get("/staff").json() == {"sub": "user_nested"}
        assert client.get("/staff").json() == {"sub": "user_inner"}
    assert app.dependency_overrides[require_clerk_user] is someone_else
    assert app.dependency_overrides[get_settings] is settings_override
    assert client.get("/staff").json() == {"sub": "user_previous"}


def test_override_is_undone_when_the_block_raises(
    guarded_app: tuple[FastAPI, TestClient],
) -> None:
    app, _ = guarded_app
    before = dict(app.dependency_overrides)
    with pytest.raises(RuntimeError), override_clerk_user(app):
        raise RuntimeError("test failed inside the block")
    assert app.dependency_overrides == before


def test_override_takes_claims_objects_and_payloads(
    guarded_app: tuple[FastAPI, TestClient],
) -> None:
    app, client = guarded_app
    claims = build_claims(sub="user_obj", email="obj@example.com")
    with override_clerk_user(app, claims) as user:
        assert user is claims
        assert client.get("/me").json()["sub"] == "user_obj"
    with override_clerk_user(app, claims, sid="sess_other") as user:
        assert (user.sub, user.sid, user.email) == ("user_obj", "sess_other", "obj@example.com")
    payload = {"sub": "user_v2", "iat": 1, "exp": 2, "v": 2, "o": {"id": "org_9", "rol": "admin"}}
    with override_clerk_user(app, payload) as user:
        assert (user.org_id, user.org_role) == ("org_9", "org:admin")
        assert client.get("/admin").status_code == 200
    with override_clerk_user(app, payload, org_role="member") as user:
        assert user.org_role == "org:member"


def test_override_skips_the_backend_api_email_lookup() -> None:
    app = FastAPI()

    @app.get("/email")
    async def email(user: CurrentUserWithEmailDep) -> dict[str, str | None]:
        return {"email": user.email}

    with FakeClerk().serve() as fake:
        user = fake.create_user(email_address="ada@example.com")
        app.dependency_overrides[get_settings] = fake.settings
        client = TestClient(app)
        with override_clerk_user(app, sub=user["id"]):
            assert client.get("/email").json() == {"email": None}
        with override_clerk_user(app, sub=user["id"], email="given@example.com"):
            assert client.get("/email").json() == {"email": "given@example.com"}
        assert fake.count(f"/v1/users/{user['id']}") == 0
        session = fake.create_session(user["id"])
        token = fake.session_token(session["id"])
        # Without the override, the same route does look the email up.
        response = client.get("/email", headers={"Authorization": f"Bearer {token}"})
        assert response.json() == {"email": "ada@example.com"}
        assert fake.count(f"/v1/users/{user['id']}") == 1


def test_build_claims_defaults_and_removal() -> None:
    claims = build_claims()
    assert claims.sub == "user_test" and claims.sid == "sess_test"
    assert claims.exp - claims.iat == 60
    assert claims.fva == (0, -1)
    assert build_claims(sid=None).sid is None
    with pytest.raises(ValidationError):
        build_claims(sub=None)


# -- the pytest plugin --------------------------------------------------------------------------


def test_fixtures_give_an_issuer_and_a_token_it_signed(
    clerk_issuer: TestIssuer, clerk_token: str
) -> None:
    assert isinstance(clerk_issuer, TestIssuer)
    header, payload = segments(clerk_token)
    assert header["kid"] == clerk_issuer.kid
    assert payload["sub"] == "user_test"
    assert payload["iss"] == clerk_issuer.issuer


def test_plugin_is_registered_through_the_pytest11_entry_point() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("clerk_deps") == "clerk_deps.testing.plugin"


def test_plugin_defines_no_hooks() -> None:
    assert [name for name in vars(plugin_module) if name.startswith("pytest_")] == []


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in a subprocess, in ``directory`` with its own empty configuration."""
    (directory / "pytest.ini").write_text("[pytest]\n")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTEST_", "COV_CORE_", "CLERK_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-c", "pytest.ini", "-p", "no:cacheprovider", *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_pytest_lists_the_fixtures_without_any_import(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "--fixtures")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "clerk_issuer" in result.stdout
    assert "clerk_token" in result.stdout
    assert "clerk_deps" in result.stdout  # pytest names the plugin the fixtures come from


OBSERVER = """
import json, os, sys

def test_observe(request):
    from clerk_deps.testing import issuer
    report = {
        "fixtures": sorted(request.fixturenames),
        "clerk_env": sorted(n for n in os.environ if n.startswith("CLERK_")),
        "keys_generated": len(issuer._keys),
    }
    with open(os.environ["OBSERVATION"], "w") as f:
        json.dump(report, f)
"""


def test_a_run_that_does_not_use_the_fixtures_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "test_observe.py").write_text(OBSERVER)
    observations = []
    for extra in ((), ("-p", "no:clerk_deps")):
        target = tmp_path / f"observation{len(observations)}.json"
        monkeypatch.setenv("OBSERVATION", str(target))
        result = run_pytest(tmp_path, "-q", *extra, "test_observe.py")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 passed" in result.stdout
        assert "warning" not in result.stdout.lower()
        observations.append(json.loads(target.read_text()))
    with_plugin, without_plugin = observations
    assert with_plugin == without_plugin
    assert with_plugin["keys_generated"] == 0
    assert with_plugin["fixtures"] == ["request"]


# -- docs/testing.md: every snippet is shown verbatim and runs ----------------------------------

SNIPPETS = sorted((ROOT / "docs" / "snippets").glob("testing_*.py"))


def test_every_snippet_is_in_the_testing_guide_verbatim() -> None:
    guide = (ROOT / "docs" / "testing.md").read_text()
    assert len(SNIPPETS) == 6
    for snippet in SNIPPETS:
        code = snippet.read_text()
        assert code.startswith(f"# {snippet.name}\n"), snippet.name  # no repository path
        assert f"```python\n{code}```" in guide, f"{snippet.name} differs from docs/testing.md"


def test_the_snippets_pass_as_a_users_test_suite(tmp_path: Path) -> None:
    # Copied into an empty directory: they run as a user's project, without this repository's
    # conftest.py or pytest configuration.
    for snippet in SNIPPETS:
        (tmp_path / snippet.name).write_text(snippet.read_text())
    result = run_pytest(tmp_path, "-q", *(s.name for s in SNIPPETS))
    assert result.returncode == 0, result.stdout + result.stderr
    collected = sum(s.read_text().count("\ndef test_") for s in SNIPPETS)
    assert collected >= 6
    assert f"{collected} passed" in result.stdout
