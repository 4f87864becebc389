"""The security table: one row per token case, through a real FastAPI route.

Each row names how the request is built, which settings the app uses, and the status and
reason code the contract (section 3) demands.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from clerk_deps import ClerkSettings, CurrentUserDep, get_settings
from clerk_deps.testing import TestIssuer

ISSUER = TestIssuer()
TEMPLATE = "cl_B7d4PD222AAA"
M2M = "cl_B7d4PD333AAA"


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: str = "") -> str:
    return f"{b64(json.dumps(header))}.{b64(json.dumps(payload))}.{signature}"


def hs256_with_public_pem() -> str:
    """The algorithm-confusion attack: HMAC keyed with the server's public PEM."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": ISSUER.kid}))
    payload = b64(json.dumps(ISSUER.claims("user_attacker")))
    mac = hmac.new(ISSUER.public_pem.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{b64(mac.digest())}"


def tampered() -> str:
    """A real signature moved onto a different payload."""
    header, _, signature = ISSUER.token("user_a").split(".")
    other = b64(json.dumps(ISSUER.claims("user_admin")))
    return f"{header}.{other}.{signature}"


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def respelled(index: int) -> str:
    """A valid token with segment ``index``'s unused low bits set: same bytes, other text."""
    for size in range(4):  # pad until the segment's length leaves unused bits
        token = ISSUER.token(pad="x" * size, headers={"x": "y" * size})
        parts = token.split(".")
        segment = parts[index]
        if len(segment) % 4 in (2, 3):
            parts[index] = segment[:-1] + ALPHABET[ALPHABET.index(segment[-1]) + 1]
            assert b64decode(parts[index]) == b64decode(segment)  # the same bytes
            return ".".join(parts)
    raise AssertionError("unreachable: some padding leaves unused bits")


def b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def bearer(token: str, scheme: str = "Bearer") -> dict[str, Any]:
    return {"headers": {"Authorization": f"{scheme} {token}"}}


@dataclass(frozen=True)
class Row:
    id: str
    request: Callable[[], dict[str, Any]]
    status: int
    reason: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def now() -> int:
    return int(time.time())


def revoked_session() -> dict[str, Any]:
    """A session Clerk has ended, as a verified session.revoked webhook reports it."""
    from clerk_deps.revocation import revocation_list

    revocation_list().revoke("session", "sess_revoked_row")
    return bearer(ISSUER.token(sid="sess_revoked_row"))


ROWS = [
    # -- where the token comes from ---------------------------------------------------
    Row("valid", lambda: bearer(ISSUER.token()), 200),
    Row("lowercase scheme", lambda: bearer(ISSUER.token(), "bearer"), 200),
    Row("uppercase scheme", lambda: bearer(ISSUER.token(), "BEARER"), 200),
    Row("cookie only", lambda: {"cookies": {"__session": ISSUER.token()}}, 200),
    Row(
        "custom cookie name",
        lambda: {"cookies": {"my_session": ISSUER.token()}},
        200,
        settings={"session_cookie": "my_session"},
    ),
    Row(
        "header wins over cookie (bad header, good cookie)",
        lambda: {**bearer("garbage"), "cookies": {"__session": ISSUER.token()}},
        401,
        "token-invalid",
    ),
    Row(
        "header wins over cookie (good header, bad cookie)",
        lambda: {**bearer(ISSUER.token()), "cookies": {"__session": "garbage"}},
        200,
    ),
    Row("no token", lambda: {}, 401, "session-token-missing"),
    Row(
        "empty bearer",
        lambda: {"headers": {"Authorization": "Bearer "}},
        401,
        "session-token-missing",
    ),
    Row(
        "bearer without space",
        lambda: {"headers": {"Authorization": "Bearer"}},
        401,
        "session-token-missing",
    ),
    Row("other scheme", lambda: bearer(ISSUER.token(), "Basic"), 401, "session-token-missing"),
    # -- size and shape -----------------------------------------------------------------
    Row("garbage", lambda: bearer("not-a-jwt"), 401, "token-invalid"),
    Row(
        "bad base64 header",
        lambda: bearer("!!!." + ISSUER.token().split(".", 1)[1]),
        401,
        "token-invalid",
    ),
    Row("impossible base64 length", lambda: bearer("eyJhb.eyJhb.a"), 401, "token-invalid"),
    Row(
        "bad JSON header", lambda: bearer(f"{b64('{nope')}.{b64('{}')}.c2ln"), 401, "token-invalid"
    ),
    Row(
        "bad JSON payload",
        lambda: bearer(f"{ISSUER.token().split('.')[0]}.{b64('not json')}.c2ln"),
        401,
        "token-invalid",
    ),
    Row(
        "header is a JSON list",
        lambda: bearer(f"{b64('[1]')}.{b64('{}')}.c2ln"),
        401,
        "token-invalid",
    ),
    Row(
        "two segments",
        lambda: bearer(".".join(ISSUER.token().split(".")[:2])),
        401,
        "token-invalid",
    ),
    Row("four segments", lambda: bearer(ISSUER.token() + ".c2ln"), 401, "token-invalid"),
    Row("20 KiB token", lambda: bearer(ISSUER.token(pad="x" * 20 * 1024)), 401, "token-invalid"),
    Row(
        "unicode in token",
        lambda: {"headers": {"Authorization": "Bearer ey\u00e9.ey.sig".encode()}},
        401,
        "token-invalid",
    ),
    Row("control character in token", lambda: bearer("eyJ\x01.eyJ.sig"), 401, "token-invalid"),
    Row(
        "signature respelled (unused low bits set)",
        lambda: bearer(respelled(2)),
        401,
        "token-invalid",
    ),
    Row(
        "payload respelled (unused low bits set)",
        lambda: bearer(respelled(1)),
        401,
        "token-invalid",
    ),
    Row(
        "header respelled (unused low bits set)",
        lambda: bearer(respelled(0)),
        401,
        "token-invalid",
    ),
    Row(
        "padded segment",
        lambda: bearer(ISSUER.token() + "=="),
        401,
        "token-invalid",
    ),
    # -- algorithm ----------------------------------------------------------------------
    Row(
        "alg none",
        lambda: bearer(unsigned({"alg": "none", "typ": "JWT"}, ISSUER.claims())),
        401,
        "token-invalid-algorithm",
    ),
    Row(
        "alg HS256 keyed with public PEM",
        lambda: bearer(hs256_with_public_pem()),
        401,
        "token-invalid-algorithm",
    ),
    Row(
        "alg RS512",
        lambda: bearer(ISSUER.token(headers={"alg": "RS512"})),
        401,
        "token-invalid-algorithm",
    ),
    Row(
        "alg missing",
        lambda: bearer(ISSUER.token(headers={"alg": None})),
        401,
        "token-invalid-algorithm",
    ),
    # -- signature ----------------------------------------------------------------------
    Row(
        "wrong key, right kid",
        lambda: bearer(ISSUER.forged_token()),
        401,
        "token-invalid-signature",
    ),
    Row(
        "payload swapped under a real signature",
        lambda: bearer(tampered()),
        401,
        "token-invalid-signature",
    ),
    Row(
        "empty signature",
        lambda: bearer(ISSUER.token().rsplit(".", 1)[0] + "."),
        401,
        "token-invalid-signature",
    ),
    Row(
        "forged with expired claims still says signature",
        lambda: bearer(ISSUER.forged_token(now=now() - 3600)),
        401,
        "token-invalid-signature",
    ),
    Row(
        "static key ignores unknown kid",
        lambda: bearer(ISSUER.token(headers={"kid": "other"})),
        200,
    ),
    # -- time ---------------------------------------------------------------------------
    Row("expired", lambda: bearer(ISSUER.expired_token()), 401, "token-expired"),
    Row("expired inside the leeway", lambda: bearer(ISSUER.token(exp=now() - 2)), 200),
    Row(
        "expired at the leeway",
        lambda: bearer(ISSUER.token(exp=now() - 10)),
        401,
        "token-expired",
        {"leeway": 0},
    ),
    Row(
        "nbf in the future",
        lambda: bearer(ISSUER.token(nbf=now() + 120)),
        401,
        "token-not-active-yet",
    ),
    Row("nbf inside the leeway", lambda: bearer(ISSUER.token(nbf=now() + 2)), 200),
    Row(
        "iat in the future",
        lambda: bearer(ISSUER.token(iat=now() + 120)),
        401,
        "token-iat-in-the-future",
    ),
    Row(
        "iat in the future, verify_iat off",
        lambda: bearer(ISSUER.token(iat=now() + 120)),
        200,
        settings={"verify_iat": False},
    ),
    # -- required claims and types ------------------------------------------------------
    Row("missing exp", lambda: bearer(ISSUER.token(exp=None)), 401, "token-invalid"),
    Row("missing iat", lambda: bearer(ISSUER.token(iat=None)), 401, "token-invalid"),
    Row("missing sub", lambda: bearer(ISSUER.token(sub=None)), 401, "token-invalid"),  # type: ignore[arg-type]
    Row("exp is a string", lambda: bearer(ISSUER.token(exp=str(now() + 60))), 401, "token-invalid"),
    Row("exp is a boolean", lambda: bearer(ISSUER.token(exp=True)), 401, "token-invalid"),
    Row("exp is huge", lambda: bearer(ISSUER.token(exp=10**400)), 401, "token-invalid"),
    Row("iat is fractional", lambda: bearer(ISSUER.token(iat=now() - 0.5)), 200),
    Row("exp is fractional", lambda: bearer(ISSUER.token(exp=now() + 59.75)), 200),
    Row("nbf is fractional", lambda: bearer(ISSUER.token(nbf=now() - 9.25)), 200),
    Row("exp is NaN", lambda: bearer(ISSUER.token(exp=float("nan"))), 401, "token-invalid"),
    Row("sub is a number", lambda: bearer(ISSUER.token(sub=42)), 401, "token-invalid"),  # type: ignore[arg-type]
    Row("sub is empty", lambda: bearer(ISSUER.token(sub="")), 401, "token-invalid"),
    Row("sid is a number", lambda: bearer(ISSUER.token(sid=7)), 401, "token-invalid"),
    Row(
        "unicode claim values",
        lambda: bearer(ISSUER.token("user_\u00fc\u4e2d", name="Zo\u00eb\n")),
        200,
    ),
    # -- issuer -------------------------------------------------------------------------
    Row(
        "wrong issuer",
        lambda: bearer(ISSUER.token(iss="https://evil.example")),
        401,
        "token-invalid-issuer",
    ),
    Row("missing iss", lambda: bearer(ISSUER.token(iss=None)), 401, "token-invalid-issuer"),
    Row(
        "iss with trailing slash",
        lambda: bearer(ISSUER.token(iss=ISSUER.issuer + "/")),
        401,
        "token-invalid-issuer",
    ),
    Row(
        "configured issuer with trailing slash is normalised",
        lambda: bearer(ISSUER.token()),
        200,
        settings={"issuer": ISSUER.issuer + "/"},
    ),
    Row(
        "issuer not configured",
        lambda: bearer(ISSUER.token(iss="https://any")),
        200,
        settings={"issuer": None},
    ),
    # -- audience -----------------------------------------------------------------------
    Row("aud present, audience off", lambda: bearer(ISSUER.token(aud="something")), 200),
    Row(
        "audience on, match",
        lambda: bearer(ISSUER.token(aud="api")),
        200,
        settings={"audience": "api"},
    ),
    Row(
        "audience list, one matches",
        lambda: bearer(ISSUER.token(aud=["x", "api2"])),
        200,
        settings={"audience": ["api", "api2"]},
    ),
    Row(
        "audience on, mismatch",
        lambda: bearer(ISSUER.token(aud="other")),
        401,
        "token-invalid-audience",
        {"audience": "api"},
    ),
    Row(
        "audience on, missing",
        lambda: bearer(ISSUER.token()),
        401,
        "token-invalid-audience",
        {"audience": "api"},
    ),
    Row(
        "audience on, wrong type",
        lambda: bearer(ISSUER.token(aud=5)),
        401,
        "token-invalid-audience",
        {"audience": "api"},
    ),
    # -- authorized parties -------------------------------------------------------------
    Row(
        "azp allowed",
        lambda: bearer(ISSUER.token(azp="https://app.example")),
        200,
        settings={"authorized_parties": ["https://app.example"]},
    ),
    Row(
        "azp not allowed",
        lambda: bearer(ISSUER.token(azp="https://evil.example")),
        401,
        "token-invalid-authorized-parties",
        {"authorized_parties": ["https://app.example"]},
    ),
    Row(
        "azp missing",
        lambda: bearer(ISSUER.token()),
        401,
        "token-invalid-authorized-parties",
        {"authorized_parties": ["https://app.example"]},
    ),
    Row("azp not checked when unset", lambda: bearer(ISSUER.token(azp="https://any.example")), 200),
    # -- session status and token type ----------------------------------------------------
    Row("sts pending", lambda: bearer(ISSUER.token(sts="pending")), 401, "session-pending"),
    Row("revoked session", revoked_session, 401, "session-revoked", {"revocation": "webhooks"}),
    Row(
        "sts pending accepted",
        lambda: bearer(ISSUER.token(sts="pending")),
        200,
        settings={"accept_pending_sessions": True},
    ),
    Row("sts active", lambda: bearer(ISSUER.token(sts="active")), 200),
    Row("cat session", lambda: bearer(ISSUER.token(headers={"cat": "cl_B7d4PD111AAA"})), 200),
    Row(
        "cat treated as session",
        lambda: bearer(ISSUER.token(headers={"cat": "cl_I7d4PD111III"})),
        200,
    ),
    Row("no cat (legacy token)", lambda: bearer(ISSUER.token(headers={"cat": None})), 200),
    Row(
        "cat JWT template",
        lambda: bearer(ISSUER.token(headers={"cat": TEMPLATE})),
        401,
        "token-type-mismatch",
    ),
    Row(
        "cat JWT template accepted",
        lambda: bearer(ISSUER.token(headers={"cat": TEMPLATE}, sid=None)),
        200,
        settings={"accept_jwt_templates": True},
    ),
    Row(
        "cat machine-to-machine",
        lambda: bearer(ISSUER.token(headers={"cat": M2M})),
        401,
        "token-type-mismatch",
    ),
    Row(
        "cat unknown",
        lambda: bearer(ISSUER.token(headers={"cat": "cl_new"})),
        401,
        "token-type-mismatch",
    ),
    Row(
        "typ at+jwt",
        lambda: bearer(ISSUER.token(headers={"typ": "at+jwt"})),
        401,
        "token-type-mismatch",
    ),
    Row(
        "typ application/at+jwt",
        lambda: bearer(ISSUER.token(headers={"typ": "application/at+jwt"})),
        401,
        "token-type-mismatch",
    ),
    Row(
        "typ AT+JWT",
        lambda: bearer(ISSUER.token(headers={"typ": "AT+JWT"})),
        401,
        "token-type-mismatch",
    ),
    Row("typ absent", lambda: bearer(ISSUER.token(headers={"typ": None})), 200),
    Row("typ jwt", lambda: bearer(ISSUER.token(headers={"typ": "jwt"})), 401, "token-invalid"),
    Row("typ JOSE", lambda: bearer(ISSUER.token(headers={"typ": "JOSE"})), 401, "token-invalid"),
    Row("typ empty", lambda: bearer(ISSUER.token(headers={"typ": ""})), 401, "token-invalid"),
    Row("typ a number", lambda: bearer(ISSUER.token(headers={"typ": 1})), 401, "token-invalid"),
    Row(
        "typ application/jwt",
        lambda: bearer(ISSUER.token(headers={"typ": "application/jwt"})),
        401,
        "token-invalid",
    ),
    Row("sub mch_", lambda: bearer(ISSUER.token("mch_123")), 401, "token-type-mismatch"),
    Row("no sid", lambda: bearer(ISSUER.token(sid=None)), 401, "token-type-mismatch"),
    Row(
        "no sid, templates accepted",
        lambda: bearer(ISSUER.token(sid=None)),
        200,
        settings={"accept_jwt_templates": True},
    ),
    Row(
        "crit header",
        lambda: bearer(ISSUER.token(headers={"crit": ["exp"]})),
        401,
        "token-invalid",
    ),
    Row(
        "unknown header parameters are ignored",
        lambda: bearer(ISSUER.token(headers={"x5u": "https://x"})),
        200,
    ),
]


def make_app(settings: ClerkSettings) -> FastAPI:
    app = FastAPI()

    @app.get("/me")
    async def me(user: CurrentUserDep) -> dict[str, Any]:
        return {"sub": user.sub, "sid": user.sid}

    app.dependency_overrides[get_settings] = lambda: settings
    return app


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_token_table(row: Row) -> None:
    client = TestClient(make_app(ISSUER.settings(**row.settings)))
    request = row.request()
    client.cookies.update(request.pop("cookies", {}))
    response = client.get("/me", **request)
    assert response.status_code == row.status, response.text
    body = response.json()
    if row.status == 200:
        assert body["sub"]
        return
    assert body["detail"]["reason"] == row.reason
    assert isinstance(body["detail"]["message"], str) and body["detail"]["message"]
    challenge = response.headers["www-authenticate"]
    if row.reason == "session-token-missing":
        assert challenge == "Bearer"
    else:
        assert challenge == 'Bearer error="invalid_token"'


def test_table_covers_every_401_reason() -> None:
    from clerk_deps import ErrorReason
    from clerk_deps.errors import status_for

    covered = {row.reason for row in ROWS}
    # The two key-set reasons need a key server; tests/integration/test_key_cache.py covers them.
    key_set_only = {"jwk-kid-mismatch"}
    # Machine tokens only (API keys, M2M, OAuth): tests/test_machine_verify.py covers them.
    machine_only = {"token-revoked"}
    for reason in ErrorReason:
        if status_for(reason) == 401 and reason.value not in key_set_only | machine_only:
            assert reason.value in covered, reason
    assert len(ROWS) >= 35


def test_valid_token_claims_reach_the_route() -> None:
    token = ISSUER.token("user_42", email="a@example.com", plan="pro")
    app = FastAPI()

    @app.get("/me")
    async def me(user: CurrentUserDep) -> dict[str, Any]:
        return {
            "user_id": user.user_id,
            "session_id": user.session_id,
            "email": user.email,
            "plan": user.model_extra and user.model_extra.get("plan"),
        }

    app.dependency_overrides[get_settings] = ISSUER.settings
    body = TestClient(app).get("/me", **bearer(token)).json()
    assert body["user_id"] == "user_42"
    assert body["session_id"].startswith("sess_")
    assert body["email"] == "a@example.com"
    assert body["plan"] == "pro"


def test_issuer_mismatch_says_which_setting_to_change() -> None:
    other = "https://other-app.clerk.accounts.dev"
    client = TestClient(make_app(ISSUER.settings()))
    detail = client.get("/me", **bearer(ISSUER.token(iss=other))).json()["detail"]
    assert detail["reason"] == "token-invalid-issuer"
    message = detail["message"]
    assert f"iss {other!r} does not match CLERK_ISSUER {ISSUER.issuer!r}" in message
    assert "another Clerk instance" in message
    assert "CLERK_ISSUER (or CLERK_PUBLISHABLE_KEY)" in message


def test_issuer_mismatch_names_the_publishable_key_when_the_issuer_comes_from_it() -> None:
    host = "configured-app.clerk.accounts.dev"
    publishable_key = "pk_test_" + base64.b64encode(f"{host}$".encode()).decode()
    settings = ISSUER.settings(issuer=None, publishable_key=publishable_key)
    client = TestClient(make_app(settings))
    detail = client.get("/me", **bearer(ISSUER.token())).json()["detail"]
    assert detail["reason"] == "token-invalid-issuer"
    assert (
        f"does not match the issuer of CLERK_PUBLISHABLE_KEY 'https://{host}'"
        in (detail["message"])
    )


def test_issuer_with_a_trailing_slash_is_named() -> None:
    client = TestClient(make_app(ISSUER.settings()))
    detail = client.get("/me", **bearer(ISSUER.token(iss=ISSUER.issuer + "/"))).json()["detail"]
    assert "trailing slash" in detail["message"]
