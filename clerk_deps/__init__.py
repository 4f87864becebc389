"""clerk_deps: trust Clerk sessions in FastAPI with one typed dependency.

from clerk_deps import CurrentUserDep

@app.get("/me")
async def me(user: CurrentUserDep):
    return {"user_id": user.sub, "email": user.email}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._lazy import load_export

if TYPE_CHECKING:
    from .auth import (
        ClerkAuth,
    )
    from .authz import (
        AUTH_RESPONSES,
        require_feature,
        require_org_permission,
        require_org_role,
        require_plan,
        require_reverification,
    )
    from .claims import (
        Actor,
        ClerkClaims,
    )
    from .dependencies import (
        CurrentUserDep,
        OptionalUserDep,
        clerk_lifespan,
        optional_clerk_user,
        require_clerk_user,
    )
    from .errors import (
        ClerkAuthError,
        ErrorReason,
        clerk_error_handler,
    )
    from .keys import (
        warm_up,
    )
    from .machine_auth import (
        MachineAuthDep,
        authenticate,
        require_clerk_auth,
        require_machine,
    )
    from .machine_tokens import (
        MachineAuth,
        TokenType,
    )
    from .settings import (
        ClerkSettings,
        get_settings,
    )
    from .tokens import (
        verify_token,
    )
    from .user_email import (
        CurrentUserWithEmailDep,
        require_clerk_user_with_email,
    )
    from .webhooks import (
        ClerkWebhookDep,
        ClerkWebhookEvent,
        verify_webhook,
    )
    from .websocket import (
        accept_websocket,
        require_origin,
    )

# Public names are imported on first use (see _lazy.py): importing the package stays cheap.
_EXPORTS = {
    "AUTH_RESPONSES": ".authz",
    "Actor": ".claims",
    "ClerkAuth": ".auth",
    "ClerkAuthError": ".errors",
    "ClerkClaims": ".claims",
    "ClerkSettings": ".settings",
    "ClerkWebhookDep": ".webhooks",
    "ClerkWebhookEvent": ".webhooks",
    "CurrentUserDep": ".dependencies",
    "CurrentUserWithEmailDep": ".user_email",
    "ErrorReason": ".errors",
    "MachineAuth": ".machine_tokens",
    "MachineAuthDep": ".machine_auth",
    "OptionalUserDep": ".dependencies",
    "TokenType": ".machine_tokens",
    "authenticate": ".machine_auth",
    "accept_websocket": ".websocket",
    "clerk_error_handler": ".errors",
    "clerk_lifespan": ".dependencies",
    "get_settings": ".settings",
    "optional_clerk_user": ".dependencies",
    "require_clerk_auth": ".machine_auth",
    "require_clerk_user": ".dependencies",
    "require_clerk_user_with_email": ".user_email",
    "require_feature": ".authz",
    "require_machine": ".machine_auth",
    "require_org_permission": ".authz",
    "require_org_role": ".authz",
    "require_origin": ".websocket",
    "require_plan": ".authz",
    "require_reverification": ".authz",
    "verify_token": ".tokens",
    "verify_webhook": ".webhooks",
    "warm_up": ".keys",
}

__all__ = [
    "AUTH_RESPONSES",
    "Actor",
    "ClerkAuth",
    "ClerkAuthError",
    "ClerkClaims",
    "ClerkSettings",
    "ClerkWebhookDep",
    "ClerkWebhookEvent",
    "CurrentUserDep",
    "CurrentUserWithEmailDep",
    "ErrorReason",
    "MachineAuth",
    "MachineAuthDep",
    "OptionalUserDep",
    "TokenType",
    "accept_websocket",
    "authenticate",
    "clerk_error_handler",
    "clerk_lifespan",
    "get_settings",
    "optional_clerk_user",
    "require_clerk_auth",
    "require_clerk_user",
    "require_clerk_user_with_email",
    "require_feature",
    "require_machine",
    "require_org_permission",
    "require_org_role",
    "require_origin",
    "require_plan",
    "require_reverification",
    "verify_token",
    "verify_webhook",
    "warm_up",
]

__version__ = "0.1.0"

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        return load_export(__name__, _EXPORTS, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
