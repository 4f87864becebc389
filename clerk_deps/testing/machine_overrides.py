"""Replace machine-token verification in an app for the length of a ``with`` block.

``override_machine`` is to ``require_machine`` / ``require_clerk_auth`` what
``override_clerk_user`` is to ``require_clerk_user``: no token, no Backend API call, but the
route's own rules (the token types it accepts, the scopes it requires) still apply.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.requests import HTTPConnection

from ..errors import ClerkAuthError
from ..machine_auth import ClerkAuthDependency, check_accepted, machine_dependencies
from ..machine_tokens import MachineAuth, TokenType, require_scopes
from .overrides import overridden

if TYPE_CHECKING:
    from ..auth import ClerkAuth

__all__ = ["build_machine", "override_machine"]

_DEFAULT_IDS = {
    TokenType.M2M_TOKEN: ("mt_test", "mch_test"),
    TokenType.OAUTH_TOKEN: ("oat_test", "user_test"),
    TokenType.API_KEY: ("ak_test", "user_test"),
}


def build_machine(
    machine: MachineAuth | Mapping[str, Any] | None = None, **fields: Any
) -> MachineAuth:
    """A :class:`MachineAuth` from ``machine`` (an instance or a mapping) updated with ``fields``.

    Without ``machine``, an API key of ``user_test`` (``id="ak_test"``, no scopes, valid for an
    hour); ``token_type="m2m_token"`` defaults the subject to ``mch_test``, ``"oauth_token"``
    adds ``client_id="oauth_app_test"``.
    """
    if isinstance(machine, MachineAuth):
        values: dict[str, Any] = machine.model_dump()
    elif machine is not None:
        values = dict(machine)
    else:
        kind = TokenType(fields.get("token_type", TokenType.API_KEY))
        token_id, subject = _DEFAULT_IDS.get(kind, ("ak_test", "user_test"))
        values = {
            "token_type": kind,
            "id": token_id,
            "subject": subject,
            "scopes": [],
            "expires_at": time.time() + 3600,
        }
        if kind is TokenType.OAUTH_TOKEN:
            values["client_id"] = "oauth_app_test"
    values.update(fields)
    return MachineAuth.model_validate(values)


def _replacement(dependency: ClerkAuthDependency, machine: MachineAuth) -> Callable[..., Any]:
    async def authenticated_machine(conn: HTTPConnection) -> MachineAuth:
        try:
            check_accepted(machine.token_type, dependency.types)
            require_scopes(machine, dependency.scopes)
        except ClerkAuthError as error:
            raise await dependency.refusal(conn, error) from None
        ClerkAuthDependency.store(conn, machine)
        return machine

    return authenticated_machine


@contextmanager
def override_machine(
    app: FastAPI,
    machine: MachineAuth | Mapping[str, Any] | None = None,
    *,
    auth: ClerkAuth | None = None,
    **fields: Any,
) -> Iterator[MachineAuth]:
    """Authenticate every request to ``app`` as one machine, without tokens, in the block.

    Every dependency made by ``require_machine`` or ``require_clerk_auth`` (so
    ``MachineAuthDep``) returns this :class:`MachineAuth` (see :func:`build_machine` for the
    defaults), if the route accepts its type (else 401 ``token-type-mismatch``) and it has the
    route's scopes (else 403 ``scope-required``)::

        with override_machine(app, token_type="api_key", subject="org_1", scopes=["read"]):
            assert client.get("/reports").status_code == 200

    With ``auth=clerk``, only the dependencies bound to that ``ClerkAuth`` are replaced. The
    overrides that were there before are put back on exit.
    """
    built = build_machine(machine, **fields)
    replacements: dict[Callable[..., Any], Callable[..., Any]] = {
        dep: _replacement(dep, built)
        for dep in machine_dependencies()
        if auth is None or dep.auth is auth
    }
    with overridden(app, replacements):
        yield built
