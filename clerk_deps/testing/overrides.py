"""Replace authentication or configuration of an app for the length of a ``with`` block.

``override_clerk_user`` is the fastest way to test a route's own logic: no token, no key, no
clock. ``override_clerk_settings`` points real verification at a ``TestIssuer`` or a
``FakeClerk``. Both put back exactly what ``app.dependency_overrides`` held before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from starlette.requests import HTTPConnection

from ..auth import ClerkAuth, default_auth
from ..claims import ClerkClaims
from ..settings import ClerkSettings, get_settings
from .issuer import DEFAULT_ISSUER

__all__ = ["build_claims", "override_clerk_settings", "override_clerk_user"]

_MISSING = object()


def build_claims(
    claims: ClerkClaims | Mapping[str, Any] | None = None, **fields: Any
) -> ClerkClaims:
    """``ClerkClaims`` from ``claims`` (an instance or a payload) updated with ``fields``.

    Without ``claims``, defaults describe a user who has just signed in: ``sub="user_test"``,
    ``sid="sess_test"``, ``iat`` now, ``exp`` 60 s later, ``fva=(0, -1)``. ``org_role`` may be
    given with or without the ``org:`` prefix, and ``org_id`` defaults to ``org_test`` when a
    role or permissions are given without it; ``None`` removes a field.
    """
    if isinstance(claims, ClerkClaims) and not fields:
        return claims
    if claims is None:
        now = int(time.time())
        values: dict[str, Any] = {
            "sub": "user_test",
            "sid": "sess_test",
            "iat": now,
            "nbf": now - 10,
            "exp": now + 60,
            "iss": DEFAULT_ISSUER,
            "fva": (0, -1),
        }
    elif isinstance(claims, ClerkClaims):
        values = claims.model_dump()
    else:
        values = dict(claims)
    if any(name.startswith("org_") for name in fields):
        values.pop("o", None)  # a v2 ``o`` object would take precedence over the new fields
    values.update(fields)
    if (values.get("org_role") or values.get("org_permissions")) and not values.get("org_id"):
        values["org_id"] = "org_test"  # a role or permissions only exist in an organization
    return ClerkClaims.model_validate(
        {name: value for name, value in values.items() if value is not None}
    )


@contextmanager
def overridden(
    app: FastAPI, replacements: Mapping[Callable[..., Any], Callable[..., Any]]
) -> Iterator[None]:
    """``app.dependency_overrides`` updated with ``replacements`` for the ``with`` block; on
    exit each dependency gets back its earlier override, or none (every override of this
    testing kit is made with it)."""
    overrides = app.dependency_overrides
    saved = {dependency: overrides.get(dependency, _MISSING) for dependency in replacements}
    overrides.update(replacements)
    try:
        yield
    finally:
        for dependency, previous in saved.items():
            if previous is _MISSING:
                overrides.pop(dependency, None)
            else:
                overrides[dependency] = previous  # type: ignore[assignment]


@contextmanager
def override_clerk_user(
    app: FastAPI,
    claims: ClerkClaims | Mapping[str, Any] | None = None,
    *,
    auth: ClerkAuth | None = None,
    **fields: Any,
) -> Iterator[ClerkClaims]:
    """Sign every request to ``app`` in as one user, without tokens, for the ``with`` block.

    Routes using ``require_clerk_user`` (so ``CurrentUserDep``, ``OptionalUserDep``,
    ``CurrentUserWithEmailDep`` and every authorization dependency built on them) receive these
    claims, without any Backend API call, and ``request.state.clerk_user`` is set as after a
    real verification. With ``auth=clerk``, the same for every dependency of that
    :class:`ClerkAuth` (``clerk.user``, ``clerk.optional_user``, ``clerk.user_with_email`` and
    the factories bound with ``auth=clerk``). ``claims`` is a ``ClerkClaims``, a payload
    mapping, or ``None`` for defaults; ``fields`` update it::

        with override_clerk_user(app, sub="user_1", org_role="admin") as user:
            assert client.get("/me").json()["user_id"] == user.sub

    On exit the overrides that were there before (including an earlier override of the same
    dependency) are put back. Authorization still runs: a route that needs ``org:admin``
    answers 403 for a user without it. The app's lifespan (``clerk_lifespan``,
    ``clerk.lifespan``) needs no Clerk configuration while the user is overridden.
    """
    user = build_claims(claims, **fields)

    def signed_in_user(conn: HTTPConnection) -> ClerkClaims:
        conn.state.clerk_user = user
        return user

    dependencies = (default_auth if auth is None else auth).user_dependencies()
    with overridden(app, dict.fromkeys(dependencies, signed_in_user)):
        yield user


@contextmanager
def override_clerk_settings(
    app: FastAPI,
    settings: ClerkSettings | Sequence[ClerkSettings],
    *,
    auth: ClerkAuth | None = None,
) -> Iterator[ClerkSettings | Sequence[ClerkSettings]]:
    """Make ``app`` verify tokens with ``settings`` for the ``with`` block.

    Typically ``clerk_issuer.settings()`` or ``fake_clerk.settings()``. Without ``auth``, this
    overrides ``get_settings`` (the module-level dependencies read it). With ``auth=clerk``,
    every dependency of that :class:`ClerkAuth` verifies with ``ClerkAuth(settings)`` instead
    (``settings`` may then be a list: several instances). What was overridden before is
    restored on exit.
    """
    if auth is None:
        if not isinstance(settings, ClerkSettings):
            raise TypeError(
                "override_clerk_settings: several instances need auth=<the app's ClerkAuth>"
            )
        single = settings

        def configured() -> ClerkSettings:
            return single

        with overridden(app, {get_settings: configured}):
            yield settings
        return
    replacement = ClerkAuth(settings)
    with overridden(
        app, dict(zip(auth.user_dependencies(), replacement.user_dependencies(), strict=True))
    ):
        yield settings
