"""Settings in code (docs/configuration.md): one ClerkAuth holds them; keywords win, the
environment and dotenv files fill the rest.

    CLERK_ISSUER=https://your-app.clerk.accounts.dev uvicorn app:app
"""

from typing import Annotated, Any

from fastapi import Depends, FastAPI

from clerk_deps import ClerkAuth, ClerkClaims, ClerkSettings, require_org_role

# Keywords beat environment variables and dotenv files; CLERK_ISSUER (or CLERK_PUBLISHABLE_KEY,
# CLERK_JWT_KEY, ...) still come from the environment.
clerk = ClerkAuth(
    ClerkSettings(
        authorized_parties=["https://app.example.com", "http://localhost:3000"],
        leeway=2,
    )
)
app = FastAPI(lifespan=clerk.lifespan)  # loads the signing keys at start-up

User = Annotated[ClerkClaims, Depends(clerk.user)]
Admin = Annotated[ClerkClaims, Depends(require_org_role("admin", auth=clerk))]


@app.get("/me")
async def me(user: User) -> dict[str, Any]:
    return {"user_id": user.user_id, "origin": user.azp}


@app.delete("/projects/{project_id}")
async def delete_project(project_id: str, user: Admin) -> dict[str, str]:
    return {"deleted": project_id, "by": user.user_id}
