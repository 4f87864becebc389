"""Rows that time a protected FastAPI route against the same route without authentication.

Method: one FastAPI app, called in this process as an ASGI callable (no HTTP, no server), so
the figure is the framework's and the library's CPU alone. Every route returns the same body.
The baseline route has one trivial ``async def`` dependency that reads the ``Authorization``
header; each protected route has the library's dependency instead. A row is the protected
route's CPU per request minus the baseline's, measured round-robin with the same requests
(same headers, same token). "Repeated" sends one token (a browser within its token's minute:
a cache hit); "distinct" sends a token the app has never seen on every request (every
verified-token cache is emptied before each repeat). Any answer other than 200 voids the run.

Configurations: settings from the environment (``CLERK_JWT_KEY``, ``CLERK_ISSUER``,
``CLERK_AUTHORIZED_PARTIES``, read by ``get_settings``) with the module-level
``require_clerk_user``; ``ClerkAuth(settings)``; and ``ClerkAuth`` with three instances, each
with its own key and issuer, the requests spread over the three.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import Depends, FastAPI, Request
from harness import APP_ORIGIN, Measurement, forget_verified_tokens, share

from clerk_deps import ClerkSettings, CurrentUserDep, get_settings
from clerk_deps.testing import TestIssuer

try:
    from clerk_deps import ClerkAuth  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - before ClerkAuth exists
    ClerkAuth = None

CONFIGS = ("environment", "ClerkAuth(settings)", "ClerkAuth, 3 instances")
REFERENCE = "RS256 check alone in the handler"


async def read_header(request: Request) -> str | None:
    """The baseline's dependency: as little as a dependency can do with the token."""
    return request.headers.get("authorization")


def build_app(
    settings: Sequence[ClerkSettings], public_key: rsa.RSAPublicKey
) -> tuple[FastAPI, dict[str, str]]:
    """The app, and the path of each configuration that can be built here."""
    app = FastAPI(openapi_url=None)
    paths = {"baseline": "/baseline", "environment": "/env", REFERENCE: "/floor"}
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    @app.get("/floor")
    async def floor_only(token: Annotated[str, Depends(read_header)]) -> dict[str, bool]:
        # the reference: the floor's RS256 check alone, on the token the request carries
        head, body, signature = token.removeprefix("Bearer ").split(".")
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        public_key.verify(raw, f"{head}.{body}".encode(), pkcs1, sha256)
        return {"ok": True}

    @app.get("/baseline")
    async def baseline(token: Annotated[str | None, Depends(read_header)]) -> dict[str, bool]:
        return {"ok": True}

    @app.get("/env")
    async def from_environment(user: CurrentUserDep) -> dict[str, bool]:
        return {"ok": True}

    if ClerkAuth is not None:
        one, several = ClerkAuth(settings[0]), ClerkAuth(list(settings))

        @app.get("/code")
        # Depends() as the default: with postponed annotations FastAPI cannot see locals.
        async def from_code(user: Any = Depends(one.user)) -> dict[str, bool]:  # noqa: B008
            return {"ok": True}

        @app.get("/multi")
        async def from_several(user: Any = Depends(several.user)) -> dict[str, bool]:  # noqa: B008
            return {"ok": True}

        paths.update({CONFIGS[1]: "/code", CONFIGS[2]: "/multi"})
    return app, paths


@contextmanager
def environment(issuer: TestIssuer) -> Iterator[None]:
    """``CLERK_*`` variables for ``issuer`` while the rows run; the old values afterwards."""
    values = {
        "CLERK_JWT_KEY": issuer.public_pem,
        "CLERK_ISSUER": issuer.issuer,
        "CLERK_AUTHORIZED_PARTIES": APP_ORIGIN,
    }
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


def _scope(path: str, token: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


class RouteRows:
    """The route measurements, sharing one app and one event loop (close it when done)."""

    def __init__(self, issuers: Sequence[TestIssuer], tokens: dict[str, list[str]]) -> None:
        """``tokens``: ``"one"``, distinct tokens of ``issuers[0]``; ``"several"``, distinct
        tokens spread over every issuer."""
        self.loop = asyncio.new_event_loop()
        settings = [i.settings(authorized_parties=[APP_ORIGIN]) for i in issuers]
        self.app, self.paths = build_app(settings, issuers[0].private_key.public_key())
        self.tokens = tokens

    def close(self) -> None:
        self.loop.close()

    def measurements(self) -> list[Measurement]:
        out = []
        for config, path in self.paths.items():
            distinct = self.tokens["several" if config == CONFIGS[2] else "one"]
            for mode, tokens in (
                ("repeated", [distinct[0]] * len(distinct)),
                ("distinct", distinct),
            ):
                if config == REFERENCE and mode == "repeated":
                    continue
                out.append(self._measurement(f"{config}/{mode}", path, tokens, mode == "distinct"))
        return out

    def _measurement(self, name: str, path: str, tokens: list[str], cold: bool) -> Measurement:
        scopes: list[dict[str, Any]] = []

        def prepare(part: int, of: int) -> None:
            if cold:
                forget_verified_tokens()
            else:  # the repeated token is in the cache before timing starts
                self.loop.run_until_complete(self._call_all([_scope(path, tokens[0])]))
            scopes[:] = [_scope(path, token) for token in share(tokens, part, of)]

        def run(part: int, of: int) -> int:
            self.loop.run_until_complete(self._call_all(scopes))
            return len(scopes)

        return Measurement(name, run, prepare)

    async def _call_all(self, scopes: list[dict[str, Any]]) -> None:
        statuses = set()

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.add(message["status"])

        for scope in scopes:
            await self.app(scope, _receive, send)
        if scopes and statuses != {200}:
            raise RuntimeError(f"{scopes[0]['path']} answered {sorted(statuses)}, not only 200")
