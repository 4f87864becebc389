"""Testing kit: mint real tokens, override authentication, emulate Clerk.

Three ways to test a protected route, fastest first::

    from clerk_deps.testing import FakeClerk, TestIssuer, override_clerk_user

    with override_clerk_user(app, sub="user_1"):          # 1. no token at all
        client.get("/me")

    issuer = TestIssuer()                                  # 2. real tokens, no network
    app.dependency_overrides[get_settings] = issuer.settings
    client.get("/me", headers={"Authorization": f"Bearer {issuer.token('user_1')}"})

    with FakeClerk().serve() as fake:                      # 3. a local Clerk on 127.0.0.1
        ...

The pytest fixtures ``clerk_issuer`` and ``clerk_token`` are registered automatically.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._lazy import load_export

if TYPE_CHECKING:
    from .fakeclerk import (
        FakeClerk,
        FakeClerkError,
        JwtTemplate,
    )
    from .issuer import (
        SESSION_CATEGORY,
        TEMPLATE_CATEGORY,
        TestIssuer,
        sign_jwt,
    )
    from .machine_overrides import (
        build_machine,
        override_machine,
    )
    from .overrides import (
        build_claims,
        override_clerk_settings,
        override_clerk_user,
    )
    from .server import (
        TestingExtraMissing,
        serve_app,
    )

# Public names are imported on first use (see _lazy.py): importing the package stays cheap.
_EXPORTS = {
    "FakeClerk": ".fakeclerk",
    "FakeClerkError": ".fakeclerk",
    "JwtTemplate": ".fakeclerk",
    "SESSION_CATEGORY": ".issuer",
    "TEMPLATE_CATEGORY": ".issuer",
    "TestIssuer": ".issuer",
    "build_claims": ".overrides",
    "build_machine": ".machine_overrides",
    "override_clerk_settings": ".overrides",
    "override_clerk_user": ".overrides",
    "override_machine": ".machine_overrides",
    "serve_app": ".server",
    "TestingExtraMissing": ".server",
    "sign_jwt": ".issuer",
}

__all__ = [
    "SESSION_CATEGORY",
    "TEMPLATE_CATEGORY",
    "FakeClerk",
    "FakeClerkError",
    "JwtTemplate",
    "TestIssuer",
    "TestingExtraMissing",
    "build_claims",
    "build_machine",
    "override_clerk_settings",
    "override_clerk_user",
    "override_machine",
    "serve_app",
    "sign_jwt",
]

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        return load_export(__name__, _EXPORTS, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
