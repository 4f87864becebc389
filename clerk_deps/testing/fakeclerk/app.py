"""The public :class:`FakeClerk`: every resource combined, as an ASGI app or a real server."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..server import serve_app
from .common import FakeClerkError, header_invalid, key_invalid
from .core import DEFAULT_BASE_URL
from .frontend import Frontend
from .keys import KeySets
from .machines import MachineTokens
from .webhooks import Webhooks


class FakeClerk(Webhooks, MachineTokens, Frontend, KeySets):
    """A local Clerk: users, sessions, session and template tokens, key sets and key rotation,
    M2M tokens, API keys and OAuth access tokens, and a browser's sign-in.

    ``FakeClerk()`` is ready for in-process use through :attr:`app`; ``with fake.serve():``
    runs it on 127.0.0.1 and sets :attr:`base_url` (and so every token's ``iss``) to the real
    address. The Python methods (:meth:`create_user`, :meth:`create_session`,
    :meth:`session_token`, ...) do what the endpoints do, for quick test set-up.

    Signing keys are generated once per process and shared by all instances (their ``iss``
    differs), so creating many emulators stays fast. ``clock`` (seconds since the epoch) sets
    the time tokens and objects are stamped with.
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        secret_key: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(base_url=base_url, secret_key=secret_key, clock=clock)
        self._serving = False
        self._router = self._build_router()

    # -- serving -------------------------------------------------------------------------------

    @property
    def app(self) -> ASGIApp:
        """The ASGI app: ``httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app))``."""
        return self._asgi

    @contextmanager
    def serve(self, *, port: int = 0) -> Iterator[FakeClerk]:
        """Run the emulator on 127.0.0.1 (on ``port``, by default a free one) for the block.

        :attr:`base_url` (and so ``iss``, :meth:`settings` and :meth:`env_vars`) becomes
        ``http://127.0.0.1:<port>`` inside the block and goes back afterwards. Needs uvicorn.
        """
        with self._lock:
            if self._serving:
                raise RuntimeError("this FakeClerk is already being served")
            self._serving = True
        previous = self._base_url
        try:
            with serve_app(self._asgi, port=port, lifespan="off") as url:
                with self._lock:
                    self._base_url = url
                yield self
        finally:
            with self._lock:
                self._base_url = previous
                self._serving = False

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            with self._lock:
                self._requests.append((scope["method"], scope["path"]))
            if scope["path"].startswith("/v1/") or scope["path"] == "/v1":
                denied = self._check_secret(Request(scope).headers.get("authorization"))
                if denied is not None:
                    await denied.response()(scope, receive, send)
                    return
        await self._router(scope, receive, send)

    def _check_secret(self, authorization: str | None) -> FakeClerkError | None:
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return header_invalid()
        if not hmac.compare_digest(credentials.strip().encode(), self._secret_key.encode()):
            return key_invalid()
        return None

    # -- HTTP endpoints ------------------------------------------------------------------------

    def _build_router(self) -> Starlette:
        async def unknown_route(request: Request, exc: Exception) -> Response:
            status = exc.status_code if isinstance(exc, HTTPException) else 404
            return FakeClerkError(
                status,
                "resource_not_found" if status == 404 else "request_method_invalid",
                "not found" if status == 404 else "method not allowed",
                f"{request.method} {request.url.path} is not an endpoint of this emulator",
            ).response()

        return Starlette(
            routes=self._routes(),
            exception_handlers={404: unknown_route, 405: unknown_route},
        )
