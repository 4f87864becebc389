from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from clerk_deps import ClerkClaims, require_clerk_user, require_org_role

app = FastAPI()


@app.get("/admin", dependencies=[Depends(require_org_role("admin"))])
async def admin():
    return {"ok": True}


client = TestClient(app)
app.dependency_overrides[require_clerk_user] = lambda: ClerkClaims(
    sub="user_1", iat=1, exp=2, org_id="org_1", org_role="admin"
)
assert client.get("/admin").status_code == 200

app.dependency_overrides[require_clerk_user] = lambda: ClerkClaims(sub="user_2", iat=1, exp=2)
response = client.get("/admin")
assert response.status_code == 403
assert response.json()["detail"]["reason"] == "org-role-required"
