"""FakeClerk's machine-token resource over HTTP: Clerk's paths, keys and answers."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from clerk_deps.testing.fakeclerk import FakeClerk


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeClerk]:
    with FakeClerk().serve() as fake:
        yield fake


def post(fake: FakeClerk, path: str, body: object, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or fake.secret_key}"}
    return httpx.post(fake.base_url + path, json=body, headers=headers)


def test_api_keys_are_created_verified_and_revoked_over_http(fake: FakeClerk) -> None:
    created = post(
        fake,
        "/api_keys",
        {
            "type": "api_key",
            "subject": "org_1",
            "name": "ci",
            "scopes": ["read"],
            "claims": {"a": 1},
            "seconds_until_expiration": 60,
        },
    ).json()
    assert created["object"] == "api_key" and created["secret"].startswith("ak_")
    assert created["expiration"] is not None
    verified = post(fake, "/api_keys/verify", {"secret": created["secret"]})
    assert verified.status_code == 200
    body = verified.json()
    assert (body["id"], body["subject"], body["name"], body["claims"]) == (
        created["id"],
        "org_1",
        "ci",
        {"a": 1},
    )
    assert "secret" not in body
    revoked = post(fake, f"/api_keys/{created['id']}/revoke", {"revocation_reason": "leaked"})
    assert revoked.json()["revoked"] is True
    again = post(fake, "/api_keys/verify", {"secret": created["secret"]}).json()
    assert again["revoked"] is True and again["revocation_reason"] == "leaked"


def test_m2m_tokens_take_the_machine_secret_key(fake: FakeClerk) -> None:
    created = post(fake, "/m2m_tokens", {"claims": {"job": "x"}}, fake.machine_secret_key).json()
    assert created["object"] == "machine_to_machine_token" and created["token"].startswith("mt_")
    for key in (fake.machine_secret_key, fake.secret_key):
        answer = post(fake, "/m2m_tokens/verify", {"token": created["token"]}, key)
        assert answer.status_code == 200 and answer.json()["subject"] == fake.machine_id
    jwt = post(fake, "/m2m_tokens", {"token_format": "jwt"}, fake.machine_secret_key).json()
    assert jwt["token"].count(".") == 2
    assert post(fake, "/m2m_tokens/verify", {"token": jwt["token"]}).status_code == 404
    revoked = post(fake, f"/m2m_tokens/{created['id']}/revoke", {}, fake.machine_secret_key)
    assert revoked.json()["revoked"] is True


def test_unknown_tokens_and_bad_requests_get_clerks_errors(fake: FakeClerk) -> None:
    unknown = post(fake, "/api_keys/verify", {"secret": "ak_" + "x" * 40})
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["code"] == "resource_not_found"
    oauth = fake.create_oauth_token()
    wrong_kind = post(fake, "/api_keys/verify", {"secret": oauth["token"]})
    assert wrong_kind.status_code == 404
    assert post(fake, "/api_keys/verify", {}).status_code == 422
    assert post(fake, "/api_keys/verify", {"secret": "x"}, "sk_test_wrong").status_code == 401
    no_header = httpx.post(fake.base_url + "/api_keys/verify", json={"secret": "x"})
    assert no_header.json()["errors"][0]["code"] == "authorization_header_format_invalid"
    # API keys cannot be verified with the machine secret key; M2M tokens can.
    assert (
        post(fake, "/api_keys/verify", {"secret": "x"}, fake.machine_secret_key).status_code == 401
    )
    assert post(fake, "/api_keys", {"subject": "mch_1", "name": "x"}).status_code == 422
    assert post(fake, "/api_keys", {"subject": "user_1"}).status_code == 422
    assert (
        post(fake, "/api_keys", {"subject": "user_1", "name": "n", "scopes": "read"}).status_code
        == 422
    )
    assert (
        post(fake, "/api_keys", {"subject": "user_1", "name": "n", "claims": []}).status_code == 422
    )
    assert (
        post(
            fake, "/api_keys", {"subject": "user_1", "name": "n", "seconds_until_expiration": 0}
        ).status_code
        == 422
    )
    assert (
        post(fake, "/m2m_tokens", {"token_format": "x"}, fake.machine_secret_key).status_code == 422
    )
    assert post(fake, "/m2m_tokens", {"claims": 1}, fake.machine_secret_key).status_code == 422
    assert (
        post(fake, "/m2m_tokens/mt_nothing/revoke", {}, fake.machine_secret_key).status_code == 404
    )


def test_oauth_tokens_and_answers_for_revoked_ones(fake: FakeClerk) -> None:
    token = fake.create_oauth_token("user_1", client_id="app", scopes=["email"])
    path = "/oauth_applications/access_tokens/verify"
    body = post(fake, path, {"access_token": token["token"]}).json()
    assert (body["object"], body["client_id"], body["scopes"]) == (
        "clerk_idp_oauth_access_token",
        "app",
        ["email"],
    )
    fake.revoke_machine_token(token["token"], answer="inactive")
    assert post(fake, path, {"access_token": token["token"]}).json() == {"active": False}


def test_outages_and_counting(fake: FakeClerk) -> None:
    key = fake.create_api_key()
    before = fake.verify_calls()
    with fake.machine_verify_outage(429, retry_after=3):
        limited = post(fake, "/api_keys/verify", {"secret": key["secret"]})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    assert post(fake, "/api_keys/verify", {"secret": key["secret"]}).status_code == 200
    assert fake.verify_calls() - before == 2
