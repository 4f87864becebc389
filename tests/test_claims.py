"""ClerkClaims: v1/v2 organization normalisation, o.fpm decoding, fva, and has().

Tokens are minted with TestIssuer and verified with verify_token, so every case goes through
the same path as a real request.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import ValidationError

from clerk_deps import (
    ClerkAuthError,
    ClerkClaims,
    ErrorReason,
    get_settings,
    require_org_permission,
    verify_token,
)
from clerk_deps.testing import TestIssuer, sign_jwt

ISSUER = TestIssuer()


def raw_token(**claims: Any) -> str:
    """A v2 session token whose payload holds exactly ``claims`` on top of the base claims
    (``None`` removes one): org claims are written by hand, as Clerk would send them."""
    payload = ISSUER.claims("user_1")
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    return sign_jwt(ISSUER.header(), payload, ISSUER.private_key)


async def verified(**claims: Any) -> ClerkClaims:
    return await verify_token(raw_token(**claims), ISSUER.settings())


def org(**fields: Any) -> dict[str, Any]:
    """A v2 ``o`` claim for org_1 (acme) with role admin, updated with ``fields``."""
    o: dict[str, Any] = {"id": "org_1", "slg": "acme", "rol": "admin"}
    o.update(fields)
    return {name: value for name, value in o.items() if value is not None}


async def permissions(fea: Any, per: Any, fpm: Any) -> list[str]:
    return (await verified(fea=fea, o=org(per=per, fpm=fpm))).org_permissions


# -- o.fpm --------------------------------------------------------------------------------


async def test_clerks_documented_example() -> None:
    claims = await verified(fea="o:dashboard,o:teams", o=org(per="manage,read", fpm="3,2"))
    assert claims.org_permissions == [
        "org:dashboard:manage",
        "org:dashboard:read",
        "org:teams:read",
    ]
    assert (claims.org_id, claims.org_slug, claims.org_role) == ("org_1", "acme", "org:admin")
    assert claims.has(permission="org:teams:read")
    assert not claims.has(permission="org:teams:manage")


async def test_masks_pair_with_organization_features_only() -> None:
    """clerk-reference example 2: the user feature takes no mask, impersonation has none."""
    claims = await verified(
        fea="o:reservations,u:dashboard,uo:support-chat,o:impersonation",
        o=org(per="read,manage", fpm="2,3"),
    )
    assert claims.org_permissions == [
        "org:reservations:manage",
        "org:support-chat:read",
        "org:support-chat:manage",
    ]
    assert claims.has(permission="org:reservations:manage")
    assert claims.has(permission="support-chat:read")  # has() adds the org: prefix
    assert not claims.has(permission="org:reservations:read")
    assert not claims.has(permission="org:dashboard:read")
    assert not claims.has(permission="org:impersonation:read")
    assert not claims.has(permission="org:impersonation:manage")


@pytest.mark.parametrize(
    ("fea", "per", "fpm", "expected"),
    [
        pytest.param(
            "u:export,o:dashboard,uo:teams,ou:billing",
            "manage,read",
            "3,2,1",
            ["org:dashboard:manage", "org:dashboard:read", "org:teams:read", "org:billing:manage"],
            id="user feature takes no integer; uo and ou scopes carry permissions",
        ),
        pytest.param(
            "o:dashboard,u:export,o:teams",
            "manage,read",
            "1,3,2",
            ["org:dashboard:manage", "org:teams:manage", "org:teams:read"],
            id="user feature in the middle takes no integer; the extra one is ignored",
        ),
        pytest.param(
            "u:export,o:dashboard,o:teams",
            "manage,read",
            "3,2",
            ["org:dashboard:manage", "org:dashboard:read", "org:teams:read"],
            id="one integer per organization feature",
        ),
        pytest.param(
            "u:export,o:dashboard,o:teams",
            "manage,read",
            "3",
            ["org:dashboard:manage", "org:dashboard:read"],
            id="organization feature without an integer gets nothing",
        ),
        pytest.param(
            "org:dashboard,organization:teams,o:billing",
            "manage,read",
            "1,2,3",
            ["org:billing:manage"],
            id="only the scopes o, ou and uo are organization features",
        ),
        pytest.param(
            "o:dashboard,o:teams,o:billing",
            "manage,read",
            "x,,2",
            ["org:billing:read"],
            id="a mask that is not all digits keeps its slot",
        ),
        pytest.param(
            "o:dashboard,o:teams",
            "manage,read",
            "3",
            ["org:dashboard:manage", "org:dashboard:read"],
            id="fewer integers than features",
        ),
        pytest.param(
            "o:dashboard",
            "manage,read",
            "2,3,3",
            ["org:dashboard:read"],
            id="extra integers ignored",
        ),
        pytest.param(
            "o:dashboard,o:teams",
            "manage,read",
            " 3 , 2 ",
            ["org:dashboard:manage", "org:dashboard:read", "org:teams:read"],
            id="whitespace",
        ),
        pytest.param(
            "o:reports",
            "a,b,c,d,e",
            "5",
            ["org:reports:a", "org:reports:c"],
            id="more permissions than bits",
        ),
        pytest.param("o:reports", "a", "7", ["org:reports:a"], id="more bits than permissions"),
        pytest.param(
            "o:reports", "a,,c", "7", ["org:reports:a", "org:reports:c"], id="empty permission name"
        ),
        pytest.param(
            "o:dashboard,o:dashboard",
            "a,b",
            "1,2",
            ["org:dashboard:a", "org:dashboard:b"],
            id="repeated feature",
        ),
        pytest.param("o:dashboard", "manage", "0", [], id="zero grants nothing"),
        pytest.param("o:dashboard,o:teams", "manage,read", "", [], id="empty fpm"),
        pytest.param("o:dashboard,o:teams", "manage,read", None, [], id="no fpm"),
        pytest.param("o:dashboard,o:teams", "", "3,2", [], id="empty per"),
        pytest.param("o:dashboard,o:teams", None, "3,2", [], id="no per"),
        pytest.param("", "manage,read", "3,2", [], id="empty fea"),
        pytest.param(None, "manage,read", "3,2", [], id="no fea"),
        pytest.param(
            "o:dashboard,o:teams", "manage,read", "x,2", ["org:teams:read"], id="malformed integer"
        ),
        pytest.param(
            "o:dashboard,o:teams", "manage,read", "-1,2", ["org:teams:read"], id="negative integer"
        ),
        pytest.param("o:dashboard,o:teams", "manage,read", "3.0,0x2", [], id="float and hex"),
        pytest.param(
            "o:dashboard,o:teams",
            "manage,read",
            "\u0663,2",
            ["org:teams:read"],
            id="non-ASCII digit",
        ),
        pytest.param(
            "o:dashboard,o:teams",
            "manage,read",
            "3,,2",
            ["org:dashboard:manage", "org:dashboard:read"],
            id="empty integer",
        ),
        pytest.param("o:dashboard,o:teams", "manage,read", "9" * 5000, [], id="too many digits"),
        pytest.param("o:dashboard,o:teams", "manage,read", 3, [], id="fpm not a string"),
        pytest.param("o:dashboard,o:teams", "manage,read", [3, 2], [], id="fpm a list"),
        pytest.param("o:dashboard,o:teams", ["manage", "read"], "3,2", [], id="per a list"),
        pytest.param("dashboard,o:teams", "manage,read", "3,2", [], id="fea entry without scope"),
        pytest.param(["o:dashboard"], "manage", "1", [], id="fea not a string"),
        pytest.param(
            "x:dashboard,o:teams",
            "manage,read",
            "3,2",
            ["org:teams:manage", "org:teams:read"],
            id="unknown scope takes no mask",
        ),
    ],
)
async def test_fpm_decoding(fea: Any, per: Any, fpm: Any, expected: list[str]) -> None:
    assert await permissions(fea, per, fpm) == expected


async def test_seventy_bit_integer() -> None:
    names = ",".join(f"p{bit}" for bit in range(70))
    assert await permissions("o:big", names, str(2**69 + 1)) == ["org:big:p0", "org:big:p69"]
    everything = await permissions("o:big", names, str(2**70 - 1))
    assert everything == [f"org:big:p{bit}" for bit in range(70)]


@pytest.mark.parametrize(
    ("fea", "per", "fpm", "granted", "refused"),
    [
        pytest.param(
            "o:dashboard,o:teams",
            "manage,read",
            "3,2",
            ["org:dashboard:manage", "org:dashboard:read", "teams:read"],
            ["org:teams:manage"],
            id="example 1",
        ),
        pytest.param(
            "o:reservations,u:dashboard,uo:support-chat,o:impersonation",
            "read,manage",
            "2,3",
            ["org:reservations:manage", "org:support-chat:read", "org:support-chat:manage"],
            ["org:reservations:read", "org:dashboard:read", "org:impersonation:read"],
            id="example 2",
        ),
    ],
)
def test_require_org_permission_on_a_route_agrees_with_clerk(
    fea: str, per: str, fpm: str, granted: list[str], refused: list[str]
) -> None:
    app = FastAPI()

    @app.get("/guarded/{permission}")
    async def guarded(permission: str, request: Request) -> dict[str, bool]:
        user = await verify_token(request.headers["x-token"], ISSUER.settings())
        return {"granted": user.has(permission=permission)}

    for permission in granted + refused:
        app.add_api_route(
            f"/needs/{permission}",
            lambda: {"ok": True},
            dependencies=[Depends(require_org_permission(permission))],
        )
    app.dependency_overrides[get_settings] = ISSUER.settings
    token = raw_token(fea=fea, o=org(per=per, fpm=fpm))
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {token}", "x-token": token}
    for permission in granted:
        assert client.get(f"/needs/{permission}", headers=headers).status_code == 200, permission
        assert client.get(f"/guarded/{permission}", headers=headers).json() == {"granted": True}
    for permission in refused:
        response = client.get(f"/needs/{permission}", headers=headers)
        assert response.status_code == 403, permission
        assert response.json()["detail"]["reason"] == "org-permission-required"
        assert client.get(f"/guarded/{permission}", headers=headers).json() == {"granted": False}


# -- v1 and v2 ----------------------------------------------------------------------------


async def test_v1_and_v2_tokens_normalise_alike() -> None:
    v2 = await verified(
        fea="o:projects,o:dashboard", o=org(per="read,delete", fpm="3,1"), pla="o:pro"
    )
    v1 = await verified(
        v=None,
        org_id="org_1",
        org_slug="acme",
        org_role="org:admin",
        org_permissions=["org:projects:read", "org:projects:delete", "org:dashboard:read"],
        pla="o:pro",
    )
    fields = ("org_id", "org_slug", "org_role", "org_permissions", "pla")
    assert v1.model_dump(include=set(fields)) == v2.model_dump(include=set(fields))
    assert v2.org_permissions == [
        "org:projects:read",
        "org:projects:delete",
        "org:dashboard:read",
    ]
    for claims in (v1, v2):
        assert claims.has(role="admin") and claims.has(role="org:admin")
        assert claims.has(permission="org:projects:delete")


@pytest.mark.parametrize(
    ("claims", "role"),
    [
        ({"o": org(rol="admin")}, "org:admin"),
        ({"o": org(rol="org:admin")}, "org:admin"),
        ({"o": org(rol="org:org:billing_manager")}, "org:billing_manager"),
        ({"v": None, "org_id": "org_1", "org_role": "org:member"}, "org:member"),
        ({"v": None, "org_id": "org_1", "org_role": "member"}, "org:member"),
        ({"o": org(rol="")}, None),
        ({"o": org(rol=7)}, None),
        ({"o": org(rol=None)}, None),
    ],
)
async def test_org_role_always_has_the_prefix(claims: dict[str, Any], role: str | None) -> None:
    assert (await verified(**claims)).org_role == role


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({}, id="v2 without o"),
        pytest.param({"o": "org_1"}, id="o not an object"),
        pytest.param({"o": org(id=None)}, id="o without id"),
        pytest.param({"o": org(id="")}, id="o with empty id"),
        pytest.param({"o": org(id=5)}, id="o with numeric id"),
        pytest.param({"v": None}, id="v1 without org_id"),
        pytest.param({"v": None, "org_id": ["org_1"], "org_role": "org:admin"}, id="v1 bad id"),
    ],
)
async def test_no_active_organization_fails_every_org_check(claims: dict[str, Any]) -> None:
    user = await verified(**claims)
    assert user.org_id is None
    assert not user.has(role="admin")
    assert not user.has(role="org:member")
    assert not user.has(permission="org:projects:read")


@pytest.mark.parametrize("version", [2, 3])
async def test_v2_token_reads_organization_data_only_from_o(version: int) -> None:
    claims = await verified(
        v=version,
        org_id="org_flat",
        org_slug="flat",
        org_role="org:admin",
        org_permissions=["org:projects:delete"],
    )
    assert (claims.org_id, claims.org_slug, claims.org_role) == (None, None, None)
    assert claims.org_permissions == []
    assert not claims.has(role="admin")
    assert not claims.has(permission="org:projects:delete")


async def test_v1_token_reads_flat_organization_claims() -> None:
    for version in (None, 1):
        claims = await verified(v=version, org_id="org_flat", org_role="org:admin")
        assert (claims.org_id, claims.org_role) == ("org_flat", "org:admin")


def test_claims_built_in_code_may_set_org_fields_whatever_v_says() -> None:
    built = ClerkClaims(sub="user_1", iat=1, exp=2, v=2, org_id="org_1", org_role="admin")
    assert (built.org_id, built.org_role) == ("org_1", "org:admin")


async def test_v2_o_claim_wins_over_flat_claims_and_stays_as_an_extra() -> None:
    claims = await verified(o=org(rol="member"), org_id="org_flat", org_role="org:admin")
    assert (claims.org_id, claims.org_role) == ("org_1", "org:member")
    assert claims.model_extra is not None and claims.model_extra["o"]["rol"] == "member"


async def test_v1_permissions_keep_only_strings() -> None:
    claims = await verified(v=None, org_id="org_1", org_permissions=["org:a:b", 7, None])
    assert claims.org_permissions == ["org:a:b"]
    claims = await verified(v=None, org_id="org_1", org_permissions="org:a:b")
    assert claims.org_permissions == []


# -- other claims -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fva", "expected"),
    [
        ([7, -1], (7, -1)),
        ([-1, -1], (-1, -1)),
        ([0, 2**40], (0, 2**40)),
        (None, None),
        ([], None),
        ([1], None),
        ([1, 2, 3], None),
        (["1", "2"], None),
        ([1.5, 0], None),
        ([True, 0], None),
        ([-2, 0], None),
        ([0, None], None),
        ("7,-1", None),
        ({"first": 7}, None),
    ],
)
async def test_fva_is_a_pair_or_none_and_never_fails_verification(
    fva: Any, expected: tuple[int, int] | None
) -> None:
    assert (await verified(fva=fva)).fva == expected


@pytest.mark.parametrize("value", [["o:pro"], 7, {"o": "pro"}])
async def test_malformed_billing_claims_read_as_absent(value: Any) -> None:
    claims = await verified(pla=value, fea=value)
    assert claims.pla is None and claims.fea is None
    assert not claims.has(plan="pro") and not claims.has(feature="pro")


async def test_actor() -> None:
    act = {"sub": "user_support", "sid": "sess_support", "iss": "https://dashboard.clerk.com"}
    claims = await verified(act={**act, "type": "impersonation"})
    assert claims.act is not None
    assert (claims.act.sub, claims.act.sid, claims.act.type) == (
        "user_support",
        "sess_support",
        "impersonation",
    )
    assert (await verified()).act is None


async def test_malformed_actor_is_rejected() -> None:
    # Unlike billing or step-up data, an unreadable act could hide an impersonation.
    with pytest.raises(ClerkAuthError) as error:
        await verified(act="user_support")
    assert error.value.reason is ErrorReason.TOKEN_INVALID
    assert "act" in error.value.message


async def test_round_trip_and_direct_construction() -> None:
    claims = await verified(fea="o:dashboard", o=org(per="read", fpm="1"), fva=[3, 4])
    assert ClerkClaims.model_validate(claims.model_dump()) == claims
    built = ClerkClaims(sub="user_2", iat=1, exp=2, org_id="org_2", org_role="admin", fva=(0, -1))
    assert built.org_role == "org:admin" and built.fva == (0, -1)
    assert built.has(role="admin", reverification="strict")
    assert ClerkClaims.model_validate(built) is built
    assert (built.user_id, built.session_id) == ("user_2", None)
    assert (claims.user_id, claims.session_id) == ("user_1", claims.sid)
    with pytest.raises(ValidationError):
        ClerkClaims.model_validate("user_2")


# -- has() --------------------------------------------------------------------------------


def claims_with(**fields: Any) -> ClerkClaims:
    return ClerkClaims(sub="user_1", iat=1, exp=2, **fields)


FEA = "o:dashboard,u:export,uo:teams,org:billing,x:weird"


@pytest.mark.parametrize(
    ("feature", "expected"),
    [
        ("dashboard", True),
        ("o:dashboard", True),
        ("org:dashboard", True),
        ("organization:dashboard", True),
        ("u:dashboard", False),
        ("user:dashboard", False),
        ("export", True),
        ("u:export", True),
        ("user:export", True),
        ("o:export", False),
        ("teams", True),
        ("o:teams", True),
        ("u:teams", True),
        ("billing", True),
        ("o:billing", True),
        ("weird", False),
        ("x:weird", False),
        ("missing", False),
        ("dash", False),
        ("o:", False),
        ("", False),
        ("o: dashboard", False),
    ],
)
def test_feature_scopes(feature: str, expected: bool) -> None:
    assert claims_with(fea=FEA).has(feature=feature) is expected


@pytest.mark.parametrize(
    ("pla", "plan", "expected"),
    [
        ("u:free", "free", True),
        ("u:free", "u:free", True),
        ("u:free", "o:free", False),
        ("o:pro", "pro", True),
        ("o:pro", "org:pro", True),
        ("o:pro", "user:pro", False),
        ("u:free,o:pro", "pro", True),
        ("u:free,o:pro", "u:pro", False),
        (None, "free", False),
        ("", "free", False),
        ("free", "free", False),
        ("u:free,pro", "free", False),
    ],
)
def test_plan_scopes(pla: str | None, plan: str, expected: bool) -> None:
    assert claims_with(pla=pla).has(plan=plan) is expected


def test_has_needs_every_asked_dimension() -> None:
    claims = claims_with(
        org_id="org_1",
        org_role="org:admin",
        org_permissions=["org:projects:delete"],
        fea="o:dashboard",
        pla="o:pro",
        fva=(0, 5),
    )
    assert claims.has(role="admin", permission="org:projects:delete", feature="dashboard")
    assert claims.has(plan="pro", reverification="strict")
    assert claims.has(permission="projects:delete")  # Clerk adds the org: prefix
    assert not claims.has(role="admin", plan="free")
    assert not claims.has(role="member", reverification="strict")
    assert claims.has(reverification="strict_mfa", feature="dashboard")
    assert not claims.has(reverification={"level": "multi_factor", "afterMinutes": 5})
    assert not claims.has(), "asking for nothing is not an authorization"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("strict", True),
        ("lax", True),
        ({"level": "second_factor", "afterMinutes": 6}, True),
        ({"level": "second_factor", "after_minutes": 6}, True),
        ({"level": "second_factor", "afterMinutes": 5}, False),
        ({"level": "first_factor", "afterMinutes": 1}, True),
        ({"level": "strict", "afterMinutes": 10}, False),
        ({"level": "second_factor"}, False),
        ({"level": "second_factor", "afterMinutes": 0}, False),
        ({"level": "second_factor", "afterMinutes": -10}, False),
        ({"level": "second_factor", "afterMinutes": True}, False),
        ({"level": "second_factor", "afterMinutes": "60"}, False),
        ("bogus", False),
        (10, False),
    ],
)
def test_has_reverification_configs(config: Any, expected: bool) -> None:
    assert claims_with(fva=(0, 5)).has(reverification=config) is expected


@pytest.mark.parametrize(
    "arguments",
    [
        {"role": ""},
        {"role": "org:"},
        {"role": "ad min"},
        {"permission": "read"},
        {"permission": "org:projects"},
        {"permission": "org:projects:"},
        {"feature": "x:dashboard"},
        {"plan": "o:"},
    ],
)
def test_has_fails_closed_on_malformed_questions(arguments: dict[str, Any]) -> None:
    claims = claims_with(
        org_id="org_1", org_role="org:admin", org_permissions=["org:projects:read"], fea="o:x"
    )
    assert claims.has(**arguments) is False


# -- fractional NumericDates --------------------------------------------------------------

T0 = 1_800_000_000


async def at(now: float, leeway: float = 0, **claims: Any) -> ClerkClaims:
    settings = ISSUER.settings(leeway=leeway, token_cache_size=0)
    return await verify_token(raw_token(**claims), settings, clock=lambda: now)


@pytest.mark.parametrize(
    ("claims", "now", "reason"),
    [
        ({"exp": T0 + 0.5}, T0 + 0.4, None),
        ({"exp": T0 + 0.5}, T0 + 0.5, ErrorReason.TOKEN_EXPIRED),
        ({"nbf": T0 + 0.5}, T0 + 0.5, None),
        ({"nbf": T0 + 0.5}, T0 + 0.4, ErrorReason.TOKEN_NOT_ACTIVE_YET),
        ({"iat": T0 + 0.5}, T0 + 0.5, None),
        ({"iat": T0 + 0.5}, T0 + 0.4, ErrorReason.TOKEN_IAT_IN_THE_FUTURE),
    ],
)
async def test_fractional_numeric_dates_are_compared_exactly(
    claims: dict[str, Any], now: float, reason: ErrorReason | None
) -> None:
    base = {"iat": T0 - 10, "nbf": T0 - 20, "exp": T0 + 60, **claims}
    if reason is None:
        await at(now, **base)
        return
    with pytest.raises(ClerkAuthError) as error:
        await at(now, **base)
    assert error.value.reason is reason


async def test_fractional_numeric_dates_are_kept_as_whole_seconds() -> None:
    claims = await at(T0, iat=T0 - 0.25, nbf=T0 - 10.75, exp=T0 + 59.999)
    assert (claims.iat, claims.nbf, claims.exp) == (T0 - 1, T0 - 11, T0 + 59)
    assert all(type(value) is int for value in (claims.iat, claims.nbf, claims.exp))
