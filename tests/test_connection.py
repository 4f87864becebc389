"""Where the session token comes from: the Authorization header (with or without a scheme), the
session cookie (suffixed per instance, never ambiguous)."""

import base64
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from clerk_deps import ClerkAuth, ClerkClaims, CurrentUserDep, get_settings
from clerk_deps.connection import session_cookie_names
from clerk_deps.testing import TestIssuer

ISSUER = TestIssuer()
# Known answers computed with Clerk's own algorithm (SHA-1, btoa, '+' -> '-', '/' -> '_').
PK_FOX = "pk_test_Y2xlYW4tZm94LTEyLmNsZXJrLmFjY291bnRzLmRldiQ"  # clean-fox-12.clerk.accounts.dev
PK_APP = "pk_test_YXBwLTE2My5jbGVyay5hY2NvdW50cy5kZXYk"  # app-163.clerk.accounts.dev


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    app.dependency_overrides[get_settings] = ISSUER.settings

    @app.get("/me")
    async def me(user: CurrentUserDep) -> str:
        return user.sub

    return TestClient(app)


def reason(response: Any) -> str:
    return str(response.json()["detail"]["reason"])


# -- the Authorization header -------------------------------------------------------------


def test_a_bare_jwt_in_authorization_carries_the_token(client: TestClient) -> None:
    response = client.get("/me", headers={"Authorization": ISSUER.token("user_bare")})
    assert response.status_code == 200 and response.json() == "user_bare"
    # ...and is verified like any other: a forged one is refused for its signature
    forged = client.get("/me", headers={"Authorization": ISSUER.forged_token()})
    assert reason(forged) == "token-invalid-signature"


@pytest.mark.parametrize(
    "value",
    ["Basic dXNlcjpwYXNz", "Token abc.def.ghi", "mt_0123456789", "garbage", "a.b", "a..b.c"],
)
def test_other_authorization_values_carry_no_token(client: TestClient, value: str) -> None:
    response = client.get("/me", headers={"Authorization": value})
    assert response.status_code == 401 and reason(response) == "session-token-missing"
    # with no session token in the header, the cookie is read
    cookie = client.get(
        "/me", headers={"Authorization": value, "Cookie": f"__session={ISSUER.token('c')}"}
    )
    assert cookie.json() == "c"


@pytest.mark.parametrize("value", ["Bearer", "Bearer ", "bearer   "])
def test_an_empty_bearer_header_is_authoritative(client: TestClient, value: str) -> None:
    response = client.get(
        "/me", headers={"Authorization": value, "Cookie": f"__session={ISSUER.token()}"}
    )
    assert reason(response) == "session-token-missing"


def test_two_authorization_headers_are_refused(client: TestClient) -> None:
    token = ISSUER.token()
    response = client.get(
        "/me", headers=[("Authorization", f"Bearer {token}"), ("Authorization", token)]
    )
    assert response.status_code == 401 and reason(response) == "token-invalid"


# -- cookies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        [("Cookie", "__session={a}; theme=dark; __session={b}")],
        [("Cookie", "__session={a}"), ("Cookie", "__session={b}")],
        [("Cookie", "__session={a}; __session={a}")],  # even the same value twice
        [("Cookie", "__session=; __session={a}")],
    ],
)
def test_two_session_cookies_are_refused(client: TestClient, headers: list[Any]) -> None:
    a, b = ISSUER.token("user_a"), ISSUER.token("user_b")
    sent = [(name, value.format(a=a, b=b)) for name, value in headers]
    response = client.get("/me", headers=sent)
    assert response.status_code == 401 and reason(response) == "token-invalid"
    assert "__session" in response.json()["detail"]["message"]


def test_one_session_cookie_among_others_is_read(client: TestClient) -> None:
    cookie = f"theme=dark; __session={ISSUER.token('user_c')}; other=1; other=2"
    assert client.get("/me", headers={"Cookie": cookie}).json() == "user_c"
    quoted = f'__session="{ISSUER.token("user_q")}"'
    assert client.get("/me", headers={"Cookie": quoted}).json() == "user_q"


def test_a_bearer_header_wins_over_ambiguous_cookies(client: TestClient) -> None:
    response = client.get(
        "/me",
        headers={
            "Authorization": f"Bearer {ISSUER.token('user_h')}",
            "Cookie": "__session=x; __session=y",
        },
    )
    assert response.json() == "user_h"


def test_suffixed_cookie_names_follow_clerk() -> None:
    assert session_cookie_names("__session", None) == ("__session",)
    assert session_cookie_names("__session", PK_FOX) == ("__session_1HVfH5DY", "__session")
    assert session_cookie_names("__session", PK_APP) == ("__session__88OQd-e", "__session")
    assert session_cookie_names("my_cookie", PK_FOX) == ("my_cookie_1HVfH5DY", "my_cookie")


def test_the_suffixed_cookie_is_read_first_then_the_plain_one() -> None:
    settings = ISSUER.settings(publishable_key=PK_FOX)
    clerk = ClerkAuth(settings)
    app = FastAPI()

    @app.get("/me")
    async def me(user: Annotated[ClerkClaims, Depends(clerk.user)]) -> str:
        return user.sub

    client = TestClient(app)
    mine, plain = ISSUER.token("user_suffixed"), ISSUER.token("user_plain")
    both = f"__session={plain}; __session_1HVfH5DY={mine}"
    assert client.get("/me", headers={"Cookie": both}).json() == "user_suffixed"
    assert client.get("/me", headers={"Cookie": f"__session={plain}"}).json() == "user_plain"
    tossed = client.get("/me", headers={"Cookie": f"__session_1HVfH5DY={mine}; {both}"})
    assert reason(tossed) == "token-invalid"
    missing = client.get("/me")
    assert "__session" in missing.json()["detail"]["message"]


def publishable_key_of(issuer: TestIssuer) -> str:
    host = issuer.issuer.removeprefix("https://")
    return "pk_test_" + base64.b64encode(f"{host}$".encode()).decode().rstrip("=")


def test_several_instances_read_their_suffixed_cookies() -> None:
    prod, staging = TestIssuer.several(2)
    settings = [i.settings(publishable_key=publishable_key_of(i)) for i in (prod, staging)]
    clerk = ClerkAuth(settings)
    app = FastAPI()

    @app.get("/me")
    async def me(user: Annotated[ClerkClaims, Depends(clerk.user)]) -> str:
        return f"{user.sub}@{user.iss}"

    client = TestClient(app)
    prod_cookie, staging_cookie = (
        session_cookie_names("__session", s.publishable_key)[0] for s in settings
    )
    assert prod_cookie != staging_cookie
    staging_token, plain = staging.token("user_s"), prod.token("user_p")
    only_staging = f"__session={plain}; {staging_cookie}={staging_token}"
    assert client.get("/me", headers={"Cookie": only_staging}).json() == (
        f"user_s@{staging.issuer}"
    )
    assert client.get("/me", headers={"Cookie": f"__session={plain}"}).json() == (
        f"user_p@{prod.issuer}"
    )
    tossed = f"{staging_cookie}={staging_token}; {staging_cookie}={plain}"
    assert reason(client.get("/me", headers={"Cookie": tossed})) == "token-invalid"
    assert reason(client.get("/me")) == "session-token-missing"


def test_an_empty_session_cookie_is_no_token(client: TestClient) -> None:
    response = client.get("/me", headers={"Cookie": "__session=; theme=dark"})
    assert reason(response) == "session-token-missing"
