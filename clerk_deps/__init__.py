"""clerk_deps: trust Clerk sessions in FastAPI with one typed dependency.

from clerk_deps import CurrentUserDep

@app.get("/me")
async def me(user: CurrentUserDep):
    return {"user_id": user.sub, "email": user.email}
"""

from .authz import (
    AUTH_RESPONSES,
    require_feature,
    require_org_permission,
    require_org_role,
    require_plan,
    require_reverification,
)
from .claims import Actor, ClerkClaims
from .dependencies import (
    CurrentUserDep,
    OptionalUserDep,
    clerk_lifespan,
    optional_clerk_user,
    require_clerk_user,
)
from .errors import ClerkAuthError, ErrorReason, clerk_error_handler
from .keys import warm_up
from .settings import ClerkSettings, get_settings
from .tokens import verify_token
from .user_email import CurrentUserWithEmailDep, require_clerk_user_with_email

__all__ = [
    "AUTH_RESPONSES",
    "Actor",
    "ClerkAuthError",
    "ClerkClaims",
    "ClerkSettings",
    "CurrentUserDep",
    "CurrentUserWithEmailDep",
    "ErrorReason",
    "OptionalUserDep",
    "clerk_error_handler",
    "clerk_lifespan",
    "get_settings",
    "optional_clerk_user",
    "require_clerk_user",
    "require_clerk_user_with_email",
    "require_feature",
    "require_org_permission",
    "require_org_role",
    "require_plan",
    "require_reverification",
    "verify_token",
    "warm_up",
]

__version__ = "0.1.0"
