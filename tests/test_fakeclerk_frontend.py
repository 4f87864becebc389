"""FakeClerk's browser sign-in: the __session cookie as Clerk's frontend sets it."""

from __future__ import annotations

import httpx
import pytest

from clerk_deps import verify_token
from clerk_deps.testing import FakeClerk


async def sign_in(fake: FakeClerk, **params: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=fake.app)
    async with httpx.AsyncClient(transport=transport, base_url=fake.base_url) as client:
        return await client.get("/sign-in", params=params)


async def test_sign_in_sets_the_session_cookie_and_redirects_back() -> None:
    fake = FakeClerk()
    user = fake.create_user(email_address="ada@example.com")
    back = "http://127.0.0.1:8000/page?x=1"
    response = await sign_in(fake, user_id=user["id"], redirect_url=back)
    assert (response.status_code, response.headers["location"]) == (303, back)
    cookie = response.headers["set-cookie"]
    token = cookie.split(";", 1)[0].removeprefix("__session=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"path=/", "samesite=lax", "max-age=60"} <= attributes
    assert "httponly" not in attributes  # Clerk's frontend reads it: getToken()
    claims = await verify_token(token, fake.settings(jwt_key=fake.public_pem))
    assert claims.sub == user["id"]
    assert fake.get_session(claims.sid or "")["status"] == "active"


@pytest.mark.parametrize(
    "redirect_url",
    ["https://evil.example/", "javascript:alert(1)", "", "http://[::1", "//127.0.0.1/"],
)
async def test_sign_in_redirects_only_to_loopback(redirect_url: str) -> None:
    fake = FakeClerk()
    user = fake.create_user(email_address="ada@example.com")
    response = await sign_in(fake, user_id=user["id"], redirect_url=redirect_url)
    assert response.status_code == 400
    assert "set-cookie" not in response.headers
    assert "127.0.0.1" in response.json()["errors"][0]["long_message"]


async def test_sign_in_needs_a_known_user() -> None:
    fake = FakeClerk()
    response = await sign_in(fake, user_id="user_nobody", redirect_url="http://127.0.0.1/")
    assert response.status_code == 400
    assert "user_nobody" in response.json()["errors"][0]["long_message"]
