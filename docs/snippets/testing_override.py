# testing_override.py
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from clerk_deps import ClerkClaims, CurrentUserDep, require_org_role
from clerk_deps.testing import override_clerk_user

app = FastAPI()


@app.get("/me")
async def me(user: CurrentUserDep) -> dict[str, str | None]:
    return {"user_id": user.user_id, "org_role": user.org_role}


@app.delete("/projects/{project_id}")
async def delete_project(
    project_id: str, user: Annotated[ClerkClaims, Depends(require_org_role("admin"))]
) -> dict[str, str]:
    return {"deleted": project_id, "by": user.user_id}


client = TestClient(app)


def test_me_as_a_signed_in_user() -> None:
    with override_clerk_user(app, sub="user_123"):
        response = client.get("/me")

    assert response.status_code == 200
    assert response.json() == {"user_id": "user_123", "org_role": None}


def test_only_admins_delete_projects() -> None:
    with override_clerk_user(app, org_id="org_1", org_role="admin"):
        assert client.delete("/projects/p1").status_code == 200

    with override_clerk_user(app, org_id="org_1", org_role="member"):
        response = client.delete("/projects/p1")

    assert response.status_code == 403
    assert response.json()["detail"]["reason"] == "org-role-required"
