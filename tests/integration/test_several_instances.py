"""ClerkAuth with several Clerk instances, each with its key set on its own real key server on
127.0.0.1. Every scenario counts what reached each server: a token is verified only with its
own instance's keys, and a token for no configured instance never causes a fetch."""

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI

import clerk_deps.instances
from clerk_deps import ClerkAuth, ClerkAuthError, ClerkClaims, ClerkSettings, require_org_role
from clerk_deps._http import close_shared_client
from clerk_deps.testing import TestIssuer, override_clerk_user

from .keyserver import KeyServer

pytestmark = pytest.mark.anyio

PROD, STAGING, FOREIGN = TestIssuer.several(3)
SHARED_KID = TestIssuer.several(2, kid="ins_shared")  # same kid, different keys


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def _servers() -> Iterator[tuple[KeyServer, KeyServer]]:
    servers = KeyServer(PROD), KeyServer(STAGING)
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def servers(_servers: tuple[KeyServer, KeyServer]) -> tuple[KeyServer, KeyServer]:
    _servers[0].reset(PROD)
    _servers[1].reset(STAGING)
    return _servers


@pytest.fixture(autouse=True)
async def _close_http_client() -> AsyncIterator[None]:
    yield
    await close_shared_client()


def instance_settings(issuer: TestIssuer, server: KeyServer, **overrides: Any) -> ClerkSettings:
    return issuer.settings(jwt_key=None, jwks_url=server.jwks_url, **overrides)


def make_app(clerk: ClerkAuth) -> FastAPI:
    app = FastAPI(lifespan=clerk.lifespan)

    @app.get("/me")
    async def me(user: Annotated[ClerkClaims, Depends(clerk.user)]) -> dict[str, Any]:
        return {"sub": user.sub, "iss": user.iss}

    @app.get("/admin")
    async def admin(
        user: Annotated[ClerkClaims, Depends(require_org_role("admin", auth=clerk))],
    ) -> dict[str, Any]:
        return {"sub": user.sub, "iss": user.iss}

    return app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def reason_of(response: httpx.Response) -> str:
    return str(response.json()["detail"]["reason"])


@pytest.fixture
def clerk(servers: tuple[KeyServer, KeyServer]) -> ClerkAuth:
    prod, staging = servers
    return ClerkAuth([instance_settings(PROD, prod), instance_settings(STAGING, staging)])


async def test_each_token_is_verified_by_its_own_instance(
    clerk: ClerkAuth, servers: tuple[KeyServer, KeyServer]
) -> None:
    prod, staging = servers
    async with client_for(make_app(clerk)) as client:
        response = await client.get("/me", headers=bearer(PROD.token("user_p")))
        assert response.json() == {"sub": "user_p", "iss": PROD.issuer}
        assert (prod.count, staging.count) == (1, 0)  # only prod's key set was fetched

        response = await client.get("/me", headers=bearer(STAGING.token("user_s")))
        assert response.json() == {"sub": "user_s", "iss": STAGING.issuer}
        assert (prod.count, staging.count) == (1, 1)

        for _ in range(3):  # cached keys and cached verifications: no more fetches
            assert (await client.get("/me", headers=bearer(PROD.token()))).status_code == 200
            assert (await client.get("/me", headers=bearer(STAGING.token()))).status_code == 200
        admin = await client.get("/admin", headers=bearer(STAGING.token(org_role="admin")))
        assert admin.json()["iss"] == STAGING.issuer
    assert (prod.count, staging.count) == (1, 1)


async def test_an_unknown_issuer_is_refused_without_any_network_call(
    clerk: ClerkAuth, servers: tuple[KeyServer, KeyServer]
) -> None:
    prod, staging = servers
    async with client_for(make_app(clerk)) as client:
        for token in (FOREIGN.token(), PROD.token(iss=None), PROD.token(iss=PROD.issuer + "/")):
            response = await client.get("/me", headers=bearer(token))
            assert response.status_code == 401
            assert reason_of(response) == "token-invalid-issuer"
            message = response.json()["detail"]["message"]
            assert PROD.issuer in message and STAGING.issuer in message
            assert FOREIGN.issuer not in message  # an unverified claim is never echoed
    assert (prod.count, staging.count) == (0, 0)


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b",
        "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln",  # payload is not JSON
        "eyJhbGciOiJSUzI1NiJ9.WzEsMl0.c2ln",  # payload is a JSON list
        "eyJhbGciOiJSUzI1NiJ9." + "W" * 20000 + ".c2ln",  # over the size limit
    ],
)
async def test_garbage_is_token_invalid_without_any_network_call(
    clerk: ClerkAuth, servers: tuple[KeyServer, KeyServer], token: str
) -> None:
    async with client_for(make_app(clerk)) as client:
        response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 401 and reason_of(response) == "token-invalid"
    assert (servers[0].count, servers[1].count) == (0, 0)


async def test_a_token_signed_by_another_instance_is_refused(
    clerk: ClerkAuth, servers: tuple[KeyServer, KeyServer]
) -> None:
    staging = servers[1]
    async with client_for(make_app(clerk)) as client:
        assert (await client.get("/me", headers=bearer(STAGING.token()))).status_code == 200
        # prod's iss, staging's key and kid: prod's key set has no such kid
        forged = PROD.forged_token(signed_by=STAGING, headers={"kid": STAGING.kid})
        response = await client.get("/me", headers=bearer(forged))
        assert response.status_code == 401 and reason_of(response) == "jwk-kid-mismatch"
        # prod's iss and kid, staging's key: the signature does not verify with prod's key
        forged = PROD.forged_token(signed_by=STAGING)
        response = await client.get("/me", headers=bearer(forged))
        assert response.status_code == 401 and reason_of(response) == "token-invalid-signature"
    assert staging.count == 1  # staging's keys were never consulted for prod's tokens


async def test_a_shared_kid_never_crosses_instances(servers: tuple[KeyServer, KeyServer]) -> None:
    one, two = SHARED_KID
    prod, staging = servers
    prod.serve(one)
    staging.serve(two)
    clerk = ClerkAuth([instance_settings(one, prod), instance_settings(two, staging)])
    async with client_for(make_app(clerk)) as client:
        assert (await client.get("/me", headers=bearer(one.token()))).status_code == 200
        assert (await client.get("/me", headers=bearer(two.token()))).status_code == 200
        for claimed, signer in ((one, two), (two, one)):
            forged = claimed.forged_token(signed_by=signer)
            assert forged.split(".")[0] == claimed.token().split(".")[0]  # the same header
            response = await client.get("/me", headers=bearer(forged))
            assert reason_of(response) == "token-invalid-signature"
    assert (prod.count, staging.count) == (1, 1)


async def test_settings_are_per_instance(servers: tuple[KeyServer, KeyServer]) -> None:
    prod, staging = servers
    strict = instance_settings(PROD, prod, leeway=0, authorized_parties=["https://app.example"])
    lenient = instance_settings(STAGING, staging, leeway=60)
    clerk = ClerkAuth([strict, lenient])
    late = {"seconds_ago": 30, "azp": "https://app.example"}
    with pytest.raises(ClerkAuthError) as refused:
        await clerk.verify(PROD.expired_token(**late))
    assert refused.value.reason.value == "token-expired"
    assert (await clerk.verify(STAGING.expired_token(**late))).iss == STAGING.issuer
    with pytest.raises(ClerkAuthError) as refused:
        await clerk.verify(PROD.token(azp="https://evil.example"))
    assert refused.value.reason.value == "token-invalid-authorized-parties"
    assert (await clerk.verify(STAGING.token(azp="https://evil.example"))).sub == "user_test"


async def test_the_lifespan_loads_every_instance(
    clerk: ClerkAuth, servers: tuple[KeyServer, KeyServer]
) -> None:
    app = make_app(clerk)
    async with clerk.lifespan(app):
        assert (servers[0].count, servers[1].count) == (1, 1)
        async with client_for(app) as client:
            assert (await client.get("/me", headers=bearer(PROD.token()))).status_code == 200
    assert (servers[0].count, servers[1].count) == (1, 1)


async def test_settings_for_routes_by_issuer(
    clerk: ClerkAuth, servers: tuple[KeyServer, KeyServer]
) -> None:
    prod_settings, staging_settings = clerk.settings
    assert await clerk.settings_for(None, PROD.token()) is prod_settings
    assert await clerk.settings_for(None, STAGING.forged_token()) is staging_settings
    claims = await clerk.verify(STAGING.token())
    assert await clerk.settings_for(None, claims) is staging_settings
    assert await clerk.all_settings() == (prod_settings, staging_settings)
    with pytest.raises(ClerkAuthError) as refused:
        await clerk.settings_for(None, FOREIGN.token())
    assert refused.value.reason.value == "token-invalid-issuer"
    with pytest.raises(ClerkAuthError) as refused:
        await clerk.settings_for(None, "mt_opaque_machine_token")
    assert refused.value.reason.value == "token-invalid"
    assert "instance-1" in repr(clerk) and "instance-2" in repr(clerk)
    assert servers[0].count == 0  # settings_for never fetches


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token decoded (for routing and verification), in order."""
    tokens: list[str] = []
    real = clerk_deps.instances.read_token

    def counting(token: str) -> Any:
        tokens.append(token)
        return real(token)

    monkeypatch.setattr(clerk_deps.instances, "read_token", counting)
    monkeypatch.setattr(clerk_deps.tokens, "read_token", counting)
    return tokens


async def test_a_repeated_token_is_routed_without_decoding_it_again(
    clerk: ClerkAuth, decoded: list[str]
) -> None:
    token = PROD.token()
    for _ in range(4):
        assert (await clerk.verify(token)).sub == "user_test"
    assert decoded == [token]
    forged = PROD.forged_token()
    for _ in range(2):  # a refused token is never remembered
        with pytest.raises(ClerkAuthError):
            await clerk.verify(forged)
    assert decoded.count(forged) == 2


async def test_every_instance_needs_a_distinct_issuer() -> None:
    no_issuer = PROD.settings(issuer=None)
    with pytest.raises(ValueError, match="instance 1 has none"):
        ClerkAuth([PROD.settings(), no_issuer])
    with pytest.raises(ValueError, match="same issuer"):
        ClerkAuth([PROD.settings(), PROD.settings(leeway=1)])
    assert ClerkAuth([no_issuer]).settings == (no_issuer,)  # one instance needs none
    # one key for two instances would let either accept the other's tokens
    same_pem = STAGING.settings(jwt_key=PROD.public_pem)
    with pytest.raises(ValueError, match="same signing keys"):
        ClerkAuth([PROD.settings(), same_pem])
    same_url = STAGING.settings(jwt_key=None, jwks_url=f"{PROD.issuer}/.well-known/jwks.json")
    with pytest.raises(ValueError, match="same signing keys"):
        ClerkAuth([PROD.settings(jwt_key=None), same_url])


async def test_override_clerk_user_covers_several_instances(clerk: ClerkAuth) -> None:
    app = make_app(clerk)
    with override_clerk_user(app, auth=clerk, sub="user_o", org_role="admin"):
        async with client_for(app) as client:
            assert (await client.get("/me")).json()["sub"] == "user_o"
            assert (await client.get("/admin")).json()["sub"] == "user_o"


async def test_the_routes_remembered_are_bounded(decoded: list[str]) -> None:
    # static keys (no key server): the bound is the sum of the token caches, here 2
    clerk = ClerkAuth([PROD.settings(token_cache_size=1), STAGING.settings(token_cache_size=1)])
    first, second, third = PROD.token(), STAGING.token(), PROD.token()
    for token in (first, second, third, third, second):
        await clerk.verify(token)
    assert decoded == [first, second, third]  # third and second were remembered
    await clerk.verify(first)  # first was evicted when third came in
    assert decoded[-1] == first
    assert "instance-1" in repr(clerk_deps.instances.Instance(PROD.settings()))
