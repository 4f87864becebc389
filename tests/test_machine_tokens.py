"""Machine tokens without a network: type detection, JWT M2M and OAuth rules, MachineAuth."""

from __future__ import annotations

import time
from typing import Any

import pytest

from clerk_deps import (
    ClerkAuthError,
    ClerkClaims,
    MachineAuth,
    TokenType,
    authenticate,
)
from clerk_deps.machine_tokens import accepted_types, require_scopes
from clerk_deps.testing import TestIssuer
from clerk_deps.testing.issuer import M2M_CATEGORY, sign_jwt

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("fresh_machine_state")]

ISSUER = TestIssuer()
# Keys come from a URL nothing listens on: any key lookup would fail with jwk-failed-to-load,
# so a test that sees another reason proves no network call was tried.
UNREACHABLE = ISSUER.settings(
    jwt_key=None, jwks_url="http://127.0.0.1:9/jwks.json", secret_key="sk_test_x"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- accepts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accepts", "expected"),
    [
        ("api_key", {TokenType.API_KEY}),
        (TokenType.M2M_TOKEN, {TokenType.M2M_TOKEN}),
        (["api_key", TokenType.SESSION_TOKEN], {TokenType.API_KEY, TokenType.SESSION_TOKEN}),
        ("any", set(TokenType)),
    ],
)
def test_accepts_takes_a_type_a_list_or_any(accepts: Any, expected: set[TokenType]) -> None:
    assert accepted_types(accepts) == expected


@pytest.mark.parametrize("accepts", ["apikey", ["session_token", "jwt"], []])
def test_accepts_refuses_unknown_names_when_declared(accepts: Any) -> None:
    with pytest.raises(ValueError, match="accepts"):
        accepted_types(accepts)


def test_what_accepts_means_is_remembered_per_value_and_bounded() -> None:
    from itertools import permutations

    from clerk_deps import machine_auth

    machine_auth._accepted_by_value.clear()
    values: list[Any] = [
        order
        for count in (1, 2, 3, 4)
        for order in permutations([t.value for t in TokenType], count)
    ]
    values += ["any", TokenType.API_KEY, frozenset({"api_key"}), ["api_key", "m2m_token"]]
    for _ in range(2):
        for accepts in values:
            assert machine_auth._accepted(accepts) == accepted_types(accepts)
    assert len(machine_auth._accepted_by_value) == 64 < len(values)


def test_token_type_values_are_clerks() -> None:
    assert [t.value for t in TokenType] == ["session_token", "m2m_token", "oauth_token", "api_key"]
    assert str(TokenType.API_KEY) == "api_key"


# -- type confusion: decided before any network call ----------------------------------------

TYPED_TOKENS = {
    "session": (ISSUER.token(), TokenType.SESSION_TOKEN),
    "m2m jwt": (ISSUER.m2m_token(), TokenType.M2M_TOKEN),
    "m2m jwt without cat": (ISSUER.m2m_token(headers={"cat": None}), TokenType.M2M_TOKEN),
    "oauth jwt": (ISSUER.oauth_token(), TokenType.OAUTH_TOKEN),
    "oauth jwt application/at+jwt": (
        ISSUER.oauth_token(headers={"typ": "application/at+jwt"}),
        TokenType.OAUTH_TOKEN,
    ),
    "opaque m2m": ("mt_" + "a" * 32, TokenType.M2M_TOKEN),
    "opaque oauth": ("oat_" + "b" * 32, TokenType.OAUTH_TOKEN),
    "api key": ("ak_" + "c" * 32, TokenType.API_KEY),
}


@pytest.mark.parametrize("name", list(TYPED_TOKENS))
async def test_a_type_the_route_does_not_accept_is_refused_without_network(name: str) -> None:
    token, kind = TYPED_TOKENS[name]
    others = [t for t in TokenType if t is not kind]
    with pytest.raises(ClerkAuthError) as caught:
        await authenticate(token, UNREACHABLE, accepts=others)
    assert caught.value.reason.value == "token-type-mismatch"
    assert caught.value.status_code == 401
    assert kind.value in caught.value.message


@pytest.mark.parametrize("name", ["opaque m2m", "opaque oauth", "api key"])
async def test_session_only_is_the_default_and_refuses_opaque_machine_tokens(name: str) -> None:
    with pytest.raises(ClerkAuthError) as caught:
        await authenticate(TYPED_TOKENS[name][0], UNREACHABLE)
    assert caught.value.reason.value == "token-type-mismatch"


async def test_garbage_is_a_session_token_by_clerks_rule() -> None:
    with pytest.raises(ClerkAuthError) as refused:
        await authenticate("not-a-token", UNREACHABLE, accepts="api_key")
    assert refused.value.reason.value == "token-type-mismatch"
    with pytest.raises(ClerkAuthError) as invalid:
        await authenticate("not-a-token", UNREACHABLE, accepts=["api_key", "session_token"])
    assert invalid.value.reason.value == "token-invalid"


# -- opaque shape ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "ak_short",
        "ak_" + "x" * 513,
        "ak_" + "x" * 20 + ".y",
        "ak_" + "é" * 20,
        "mt_" + "x" * 20 + " x",
        "oat_" + "/" * 20,
    ],
)
async def test_impossible_shapes_are_refused_in_process(token: str) -> None:
    # api_url points nowhere: a call would be 503, so token-invalid proves none was made.
    settings = ISSUER.settings(api_url="http://127.0.0.1:9", secret_key="sk_test_x")
    with pytest.raises(ClerkAuthError) as caught:
        await authenticate(token, settings, accepts="any")
    assert caught.value.reason.value == "token-invalid"
    assert token not in caught.value.message


async def test_an_opaque_token_without_a_secret_key_is_not_configured() -> None:
    for token in ("ak_" + "c" * 32, "mt_" + "a" * 32, "oat_" + "b" * 32):
        with pytest.raises(ClerkAuthError) as caught:
            await authenticate(token, ISSUER.settings(), accepts="any")
        assert caught.value.status_code == 500
        assert caught.value.reason.value == "auth-not-configured"
        assert "CLERK_SECRET_KEY" in caught.value.message


# -- JWT machine tokens, verified locally ----------------------------------------------------


async def test_jwt_m2m_token_gives_machine_auth() -> None:
    token = ISSUER.m2m_token("mch_worker", scopes=["mch_api", "mch_db"], env="prod")
    auth = await authenticate(token, ISSUER.settings(), accepts="m2m_token")
    assert isinstance(auth, MachineAuth)
    assert auth.token_type is TokenType.M2M_TOKEN
    assert auth.subject == auth.machine_id == "mch_worker"
    assert auth.id.startswith("mt_")
    assert auth.scopes == ["mch_api", "mch_db"]
    assert auth.claims == {"env": "prod"}
    assert auth.expires_at is not None and auth.expires_at > time.time()
    assert auth.user_id is None and auth.org_id is None


async def test_jwt_m2m_scopes_fall_back_to_aud() -> None:
    token = ISSUER.m2m_token(scopes=None, aud=["mch_a", "mch_b"])
    auth = await authenticate(token, ISSUER.settings(), accepts="m2m_token")
    assert isinstance(auth, MachineAuth) and auth.scopes == ["mch_a", "mch_b"]
    both = ISSUER.m2m_token(scopes=["mch_c"], aud=["mch_a"])
    auth = await authenticate(both, ISSUER.settings(), accepts="m2m_token")
    assert isinstance(auth, MachineAuth) and auth.scopes == ["mch_c"]


async def test_jwt_oauth_token_gives_machine_auth() -> None:
    token = ISSUER.oauth_token("user_1", client_id="client_9", scopes=["read", "write"])
    auth = await authenticate(token, ISSUER.settings(), accepts=["oauth_token"])
    assert isinstance(auth, MachineAuth)
    assert (auth.token_type, auth.subject, auth.client_id) == (
        TokenType.OAUTH_TOKEN,
        "user_1",
        "client_9",
    )
    assert auth.user_id == "user_1"
    assert auth.scopes == ["read", "write"]
    assert auth.id.startswith("oat_")
    string_scope = ISSUER.oauth_token(scp=None, scope="a b")
    auth = await authenticate(string_scope, ISSUER.settings(), accepts="oauth_token")
    assert isinstance(auth, MachineAuth) and auth.scopes == ["a", "b"]


async def test_session_token_still_verifies_through_authenticate() -> None:
    claims = await authenticate(ISSUER.token("user_7"), ISSUER.settings(), accepts="any")
    assert isinstance(claims, ClerkClaims) and claims.sub == "user_7"


BAD_JWT_MACHINES: dict[str, tuple[str, str]] = {
    "m2m forged": (ISSUER.forged_token("mch_x"), "token-invalid-signature"),
    "m2m expired": (ISSUER.m2m_token(now=time.time() - 7200, lifetime=60), "token-expired"),
    "m2m alg none": (
        sign_jwt({"alg": "none", "kid": ISSUER.kid}, {"sub": "mch_x"}, ISSUER.private_key),
        "token-invalid-algorithm",
    ),
    "m2m session category": (
        ISSUER.m2m_token(headers={"cat": "cl_B7d4PD111AAA"}),
        "token-invalid",
    ),
    "m2m jti not mt_": (ISSUER.m2m_token(jti="abc"), "token-invalid"),
    "m2m no scopes, aud not a list": (ISSUER.m2m_token(scopes=None, aud=5), "token-invalid"),
    "m2m wrong issuer": (
        TestIssuer(issuer="https://other.example").m2m_token(),
        "token-invalid-issuer",
    ),
    "oauth sub not a user": (ISSUER.oauth_token("org_1"), "token-invalid"),
    "oauth jti not oat_": (ISSUER.oauth_token(jti="x"), "token-invalid"),
    "oauth no client_id": (ISSUER.oauth_token(client_id=None), "token-invalid"),
    "oauth scp not a list of strings": (ISSUER.oauth_token(scp=[1]), "token-invalid"),
    "oauth missing exp": (ISSUER.oauth_token(exp=None), "token-invalid"),
}


@pytest.mark.parametrize("name", list(BAD_JWT_MACHINES))
async def test_bad_jwt_machine_tokens(name: str) -> None:
    token, reason = BAD_JWT_MACHINES[name]
    with pytest.raises(ClerkAuthError) as caught:
        await authenticate(token, ISSUER.settings(), accepts="any")
    assert caught.value.reason.value == reason, caught.value.message
    assert caught.value.status_code == 401


def test_m2m_category_matches_clerk() -> None:
    assert M2M_CATEGORY == "cl_B7d4PD333AAA"


# -- MachineAuth -----------------------------------------------------------------------------


def test_machine_auth_is_read_only_all_the_way_down() -> None:
    auth = MachineAuth(
        token_type=TokenType.API_KEY,
        id="ak_1",
        subject="org_1",
        scopes=["read"],
        claims={"plan": {"tier": "gold"}, "tags": ["a"]},
    )
    assert auth.org_id == "org_1"
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        auth.subject = "org_2"  # type: ignore[misc]
    with pytest.raises(TypeError):
        auth.scopes.append("write")
    assert auth.claims is not None
    with pytest.raises(TypeError):
        auth.claims["plan"]["tier"] = "free"
    with pytest.raises(TypeError):
        auth.claims["tags"].append("b")
    assert auth.scopes == ["read"]


def test_machine_auth_refuses_session_type() -> None:
    with pytest.raises(ValueError):
        MachineAuth(token_type=TokenType.SESSION_TOKEN, id="x", subject="user_1")


def test_require_scopes_names_the_first_missing_scope() -> None:
    auth = MachineAuth(token_type=TokenType.API_KEY, id="ak_1", subject="user_1", scopes=["a"])
    require_scopes(auth, ["a"])
    with pytest.raises(ClerkAuthError) as caught:
        require_scopes(auth, ["a", "b", "c"])
    assert caught.value.status_code == 403
    assert caught.value.reason.value == "scope-required"
    assert "'b'" in caught.value.message
    assert caught.value.detail["scope"] == "b"
