"""FastAPI glue: the module-level dependencies, bound to the default ``ClerkAuth()``.

``require_clerk_user`` works on HTTP and WebSocket routes alike (it takes an
``HTTPConnection``). Its settings come from ``get_settings``, or from
``app.dependency_overrides[get_settings]`` when the app sets one, and overriding
``require_clerk_user`` itself replaces authentication in tests. To configure in code without
overrides, or to trust several Clerk instances, use :class:`~clerk_deps.ClerkAuth`.

Token extraction, settings resolution and connection refusals live in ``connection.py`` and
are re-exported here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from .auth import default_auth
from .claims import ClerkClaims
from .connection import SettingsDep, error_for_connection, extract_token, resolve_settings

__all__ = [
    "CurrentUserDep",
    "OptionalUserDep",
    "SettingsDep",
    "clerk_lifespan",
    "error_for_connection",
    "extract_token",
    "optional_clerk_user",
    "require_clerk_user",
    "resolve_settings",
]

require_clerk_user = default_auth.user
optional_clerk_user = default_auth.optional_user

CurrentUserDep = Annotated[ClerkClaims, Depends(require_clerk_user)]
"""``user: CurrentUserDep`` in a route signature: the verified claims, or 401."""

OptionalUserDep = Annotated[ClerkClaims | None, Depends(optional_clerk_user)]
"""``user: OptionalUserDep``: the verified claims, ``None`` without a token, 401 for a bad one."""

clerk_lifespan = default_auth.lifespan
"""``FastAPI(lifespan=clerk_lifespan)``: load signing keys before the first request.

Uses ``app.dependency_overrides[get_settings]`` when set. Invalid settings stop start-up with
their message; no Clerk configuration at all is logged as one line naming the variables (the
app starts, protected routes answer 500 ``auth-not-configured``); when the app overrides
``require_clerk_user`` (``override_clerk_user``), Clerk settings are not read at all. An
unreachable key server only logs a warning. The shared HTTP client is closed on shutdown.
"""
