# testing_tokens.py
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from clerk_deps import CurrentUserDep, get_settings
from clerk_deps.testing import TestIssuer

app = FastAPI()


@app.get("/me")
async def me(user: CurrentUserDep) -> dict[str, str | None]:
    return {"user_id": user.user_id, "email": user.email}


@pytest.fixture
def client(clerk_issuer: TestIssuer) -> Iterator[TestClient]:
    app.dependency_overrides[get_settings] = clerk_issuer.settings  # trust the test issuer
    yield TestClient(app)
    app.dependency_overrides.clear()


def test_a_real_token_is_accepted(client: TestClient, clerk_token: str) -> None:
    response = client.get("/me", headers={"Authorization": f"Bearer {clerk_token}"})

    assert response.status_code == 200
    assert response.json() == {"user_id": "user_test", "email": None}


def test_claims_come_from_the_token(client: TestClient, clerk_issuer: TestIssuer) -> None:
    token = clerk_issuer.token("user_42", email="ada@example.com")

    response = client.get("/me", headers={"Authorization": f"Bearer {token}"})

    assert response.json() == {"user_id": "user_42", "email": "ada@example.com"}


def test_bad_tokens_are_refused_with_a_reason(client: TestClient, clerk_issuer: TestIssuer) -> None:
    bad_tokens = {
        "token-expired": clerk_issuer.expired_token(),
        "token-invalid-signature": clerk_issuer.forged_token(),
        "token-invalid-issuer": TestIssuer(issuer="https://another.example").token(),
    }
    for reason, token in bad_tokens.items():
        response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.json()["detail"]["reason"] == reason

    assert client.get("/me").json()["detail"]["reason"] == "session-token-missing"
