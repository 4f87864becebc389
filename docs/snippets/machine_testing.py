from fastapi import FastAPI
from fastapi.testclient import TestClient

from clerk_deps import MachineAuthDep, get_settings
from clerk_deps.testing import FakeClerk, override_machine

app = FastAPI()


@app.get("/whoami")
async def whoami(machine: MachineAuthDep):
    return {"subject": machine.subject, "scopes": machine.scopes}


# 1. No token at all: the route sees this machine (its accepts and scopes still apply).
with override_machine(app, token_type="api_key", subject="org_1", scopes=["read"]):
    assert TestClient(app).get("/whoami").json() == {"subject": "org_1", "scopes": ["read"]}

# 2. Real API keys, verified by a local Clerk on 127.0.0.1 that counts the calls.
with FakeClerk().serve() as fake:
    app.dependency_overrides[get_settings] = fake.settings
    key = fake.create_api_key("org_1", scopes=["read"])
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {key['secret']}"}
    for _ in range(3):
        assert client.get("/whoami", headers=headers).json()["subject"] == "org_1"
    assert fake.verify_calls() == 1  # verified once, then served from the cache

    other = fake.create_api_key("org_2")
    fake.revoke_machine_token(other["id"])
    refused = client.get("/whoami", headers={"Authorization": f"Bearer {other['secret']}"})
    assert refused.json()["detail"]["reason"] == "token-revoked"
