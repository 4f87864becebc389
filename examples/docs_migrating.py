"""fastapi-clerk-auth patterns rewritten with clerk_deps (docs/migrating.md)."""

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request

from clerk_deps import ClerkClaims, CurrentUserDep, OptionalUserDep, require_clerk_user

app = FastAPI()


# Was: credentials: HTTPAuthorizationCredentials = Depends(ClerkHTTPBearer(config=...)),
# then credentials.decoded["sub"].
@app.get("/me")
async def me(user: CurrentUserDep) -> dict[str, Any]:
    return {"user_id": user.sub, "session_id": user.sid, "role": user.model_extra.get("role")}


# Was: ClerkHTTPBearer(config=..., auto_error=False) and `if not credentials: ...`.
# A missing token gives None; a bad token is still a 401, never "anonymous".
@app.get("/feed")
async def feed(user: OptionalUserDep) -> dict[str, str]:
    if user is None:
        return {"feed": "public"}
    return {"feed": f"personal feed of {user.sub}"}


# Was: ClerkHTTPBearer(config=..., add_state=True) as a router dependency, then
# request.state.clerk_auth.decoded.get("sub") in the routes.
projects = APIRouter(prefix="/projects", dependencies=[Depends(require_clerk_user)])


@projects.get("/")
async def list_projects(request: Request) -> dict[str, str]:
    user: ClerkClaims = request.state.clerk_user
    return {"owner": user.sub}


app.include_router(projects)
