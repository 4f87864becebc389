from typing import Annotated

from fastapi import APIRouter, Depends

from clerk_deps import AUTH_RESPONSES, ClerkClaims, require_org_permission, require_org_role

router = APIRouter(responses=AUTH_RESPONSES)


@router.get("/org/settings")
async def org_settings(admin: Annotated[ClerkClaims, Depends(require_org_role("admin"))]):
    return {"org_id": admin.org_id, "role": admin.org_role}


@router.delete(
    "/projects/{project_id}",
    dependencies=[Depends(require_org_permission("org:projects:delete"))],
)
async def delete_project(project_id: str):
    return {"deleted": project_id}
