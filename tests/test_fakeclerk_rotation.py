"""Key rotation in tests: what FakeClerk's configuration does so a rotation is seen at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from clerk_deps import ClerkAuthError, ErrorReason, verify_token
from clerk_deps.testing import FakeClerk


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeClerk]:
    with FakeClerk().serve() as fake:
        yield fake


def test_settings_see_a_rotation_on_the_next_token(fake: FakeClerk) -> None:
    settings = fake.settings()
    assert settings.jwks_refresh_cooldown == 0
    session = fake.create_session(fake.create_user()["id"])
    old = fake.session_token(session["id"])
    assert asyncio.run(verify_token(old, settings)).sid == session["id"]

    fake.rotate_keys()
    new = fake.session_token(session["id"])

    assert asyncio.run(verify_token(new, settings)).sid == session["id"]
    with pytest.raises(ClerkAuthError) as refused:
        asyncio.run(verify_token(old, settings))
    assert refused.value.reason is ErrorReason.JWK_KID_MISMATCH


def test_the_cooldown_can_still_be_chosen(fake: FakeClerk) -> None:
    assert fake.settings(jwks_refresh_cooldown=10).jwks_refresh_cooldown == 10
    assert fake.env_vars()["CLERK_JWKS_REFRESH_COOLDOWN"] == "0"
