# testing_clerk_auth.py
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from clerk_deps import ClerkAuth, ClerkClaims, ClerkSettings, require_org_role
from clerk_deps.testing import TestIssuer, override_clerk_settings, override_clerk_user

# the app: settings in code, no Clerk variables needed to import it
clerk = ClerkAuth(ClerkSettings(authorized_parties=["https://app.example.com"]))
app = FastAPI(lifespan=clerk.lifespan)


@app.get("/me")
async def me(user: Annotated[ClerkClaims, Depends(clerk.user)]) -> dict[str, str]:
    return {"user_id": user.user_id}


@app.delete("/projects/{project_id}")
async def delete_project(
    project_id: str, user: Annotated[ClerkClaims, Depends(require_org_role("admin", auth=clerk))]
) -> dict[str, str]:
    return {"deleted": project_id}


def test_one_call_overrides_every_dependency_of_the_clerk_auth() -> None:
    # the lifespan starts without any Clerk configuration while the user is overridden
    with override_clerk_user(app, auth=clerk, org_role="admin"), TestClient(app) as client:
        assert client.get("/me").json() == {"user_id": "user_test"}
        assert client.delete("/projects/p1").status_code == 200


def test_real_tokens_from_several_instances() -> None:
    prod, staging = TestIssuer.several(2)  # distinct issuers and keys
    trusted = [prod.settings(), staging.settings()]
    with override_clerk_settings(app, trusted, auth=clerk), TestClient(app) as client:
        for issuer in (prod, staging):
            response = client.get("/me", headers={"Authorization": f"Bearer {issuer.token()}"})
            assert response.status_code == 200
        # prod's iss and kid, signed with staging's key: refused
        forged = prod.forged_token(signed_by=staging)
        response = client.get("/me", headers={"Authorization": f"Bearer {forged}"})
        assert response.json()["detail"]["reason"] == "token-invalid-signature"
