"""The two other Python libraries that verify Clerk session tokens, on the same tokens.

* fastapi-clerk-auth: its FastAPI dependency ``ClerkHTTPBearer(ClerkConfig(jwks_url=...,
  jwks_cache_keys=True))`` (its fastest setting), called with a Starlette request as FastAPI
  calls it. It only gets keys from a key set URL, so the key set is served from 127.0.0.1 by a
  server that counts requests: it is fetched once before timing, and a fetch while timed voids
  the row.
* clerk-backend-api: ``clerk_backend_api.security.verify_token(token,
  VerifyTokenOptions(jwt_key=<PEM>))``, the networkless mode of Clerk's Python SDK.

Both must accept the tokens (checked before timing; fastapi-clerk-auth runs with
``debug_mode=True`` so that a rejection while timed raises), so no figure comes from fast
failures. They check less than clerk_deps: neither checks ``iss`` or ``azp`` unless told, the
token's type (``cat``, ``typ``, ``sid``) or ``sts``, nor decodes organization permissions.
Installed by ``pip install -e '.[bench]'``; without them the rows say so.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness import Measurement, drive, share
from starlette.requests import Request

from clerk_deps.testing import TestIssuer

LABELS = ("fastapi-clerk-auth ClerkHTTPBearer", "clerk-backend-api verify_token")


class KeySetServer:
    """Serves one key set on 127.0.0.1 and counts the requests it answered."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        body, counter = json.dumps(jwks).encode(), self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                counter.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.requests = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}/.well-known/jwks.json"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def bearer_request(token: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": b"",
            "headers": [(b"authorization", f"Bearer {token}".encode())],
        }
    )


def _rejection(verify_one: Callable[[str], Any], tokens: Sequence[str]) -> str:
    for token in tokens:
        try:
            if not verify_one(token):
                return "rejected our tokens"
        except Exception as error:
            return f"rejected our tokens: {type(error).__name__}: {error}"[:120]
    return ""


def fastapi_clerk_auth(
    issuer: TestIssuer, tokens: Sequence[str], stack: ExitStack
) -> tuple[Measurement | None, Callable[[], str]]:
    """(measurement or None, a check to call after timing: '' or why the figure is void)."""
    try:
        from fastapi_clerk_auth import ClerkConfig, ClerkHTTPBearer
    except ImportError:
        return None, lambda: "not installed (pip install -e '.[bench]')"
    server = KeySetServer(issuer.jwks())
    stack.callback(server.close)
    config = ClerkConfig(jwks_url=server.url, jwks_cache_keys=True)
    bearer = ClerkHTTPBearer(config=config, debug_mode=True)
    why = _rejection(lambda t: drive(bearer(bearer_request(t))).decoded, tokens[:3])
    if why:
        return None, lambda: why
    requests = [bearer_request(token) for token in tokens]
    fetched = server.requests

    def run(part: int, of: int) -> int:
        inputs = share(requests, part, of)
        for request in inputs:
            drive(bearer(request))
        return len(inputs)

    def check() -> str:
        extra = server.requests - fetched
        return f"fetched its key set {extra} times while timed" if extra else ""

    return Measurement(LABELS[0], run), check


def clerk_backend_api(
    issuer: TestIssuer, tokens: Sequence[str]
) -> tuple[Measurement | None, Callable[[], str]]:
    try:
        from clerk_backend_api.security import VerifyTokenOptions, verify_token
    except ImportError:
        return None, lambda: "not installed (pip install -e '.[bench]')"
    options = VerifyTokenOptions(jwt_key=issuer.public_pem)
    why = _rejection(lambda t: verify_token(t, options), tokens[:3])
    if why:
        return None, lambda: why

    def run(part: int, of: int) -> int:
        inputs = share(tokens, part, of)
        for token in inputs:
            verify_token(token, options)
        return len(inputs)

    return Measurement(LABELS[1], run), lambda: ""
