"""The peer libraries on the same tokens, when they are installed (``pip install -e '.[bench]'``).

* ``fastapi-clerk-auth``: its FastAPI dependency ``ClerkHTTPBearer(ClerkConfig(jwks_url=...))``
  called with a request that carries the token, as FastAPI calls it. It only knows how to get
  keys from a JWKS URL (PyJWT's ``PyJWKClient``), so the TestIssuer key set is served by a
  small HTTP server on 127.0.0.1. The key set is fetched once before timing and then comes
  from PyJWKClient's own cache (lifespan 300 s, its default); the server counts its requests,
  and the bench checks that none happened while timing. Measured with the default
  ``ClerkConfig`` and with ``jwks_cache_keys=True`` (its fastest setting).
* ``clerk-backend-api``: ``clerk_backend_api.security.verify_token(token,
  VerifyTokenOptions(jwt_key=<PEM>))``, the networkless mode of Clerk's Python SDK (synchronous).

A peer must accept our tokens: five are checked before timing, and while timed a rejection
raises (fastapi-clerk-auth runs with ``debug_mode=True`` for that), so no figure can come from
fast failures. A peer that cannot verify our tokens gets no number, only the reason.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from latency import Measurement, bearer_request, drive

from clerk_deps.testing import TestIssuer


@dataclass(frozen=True)
class Peer:
    """A peer ready to be timed (``measurement``), or the reason it cannot be."""

    label: str
    measurement: Measurement | None
    reason: str = ""
    # called after timing: '' when the timing is valid, else why not
    validate: Callable[[], str] = lambda: ""


class JwksServer:
    """Serves one JSON key set at ``/.well-known/jwks.json`` on 127.0.0.1, counting requests."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        body = json.dumps(jwks).encode()
        counter = self

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
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/.well-known/jwks.json"

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _check_all(verify_one: Callable[[str], Any], tokens: Sequence[str], name: str) -> str:
    """'' when ``verify_one`` accepts every token, else the reason it does not."""
    for token in tokens:
        try:
            result = verify_one(token)
        except Exception as error:
            return f"{name} rejected our token: {type(error).__name__}: {error}"[:200]
        if not result:
            return f"{name} rejected our token (returned {result!r})"
    return ""


def fastapi_clerk_auth(
    issuer: TestIssuer, tokens: Sequence[str], stack: ExitStack, *, cache_keys: bool
) -> Peer:
    label = "fastapi-clerk-auth" + (" (jwks_cache_keys=True)" if cache_keys else "")
    try:
        from fastapi_clerk_auth import ClerkConfig, ClerkHTTPBearer
    except ImportError:
        return Peer(label, None, "not installed (pip install -e '.[bench]')")
    server = stack.enter_context(JwksServer(issuer.jwks()))
    bearer = ClerkHTTPBearer(
        config=ClerkConfig(jwks_url=server.url, jwks_cache_keys=cache_keys), debug_mode=True
    )

    def call(token: str) -> Any:
        credentials = drive(bearer(bearer_request(token)))
        return credentials is not None and credentials.decoded

    reason = _check_all(call, tokens[:5], label)
    if reason:
        return Peer(label, None, reason)
    requests = [bearer_request(token) for token in tokens]
    fetched_before = server.requests

    def run() -> int:
        for request in requests:
            drive(bearer(request))
        return len(requests)

    def validate() -> str:
        fetched = server.requests - fetched_before
        return f"fetched its key set {fetched} times while timed" if fetched else ""

    return Peer(label, Measurement(label, run), validate=validate)


def clerk_backend_api(issuer: TestIssuer, tokens: Sequence[str]) -> Peer:
    label = "clerk-backend-api verify_token"
    try:
        from clerk_backend_api.security import VerifyTokenOptions, verify_token
    except ImportError:
        return Peer(label, None, "not installed (pip install -e '.[bench]')")
    options = VerifyTokenOptions(jwt_key=issuer.public_pem)
    reason = _check_all(lambda token: verify_token(token, options), tokens[:5], label)
    if reason:
        return Peer(label, None, reason)

    def run() -> int:
        for token in tokens:
            verify_token(token, options)
        return len(tokens)

    return Peer(label, Measurement(label, run))


def prepare_peers(issuer: TestIssuer, tokens: Sequence[str], stack: ExitStack) -> list[Peer]:
    """The three peer rows, in table order; servers they need live as long as ``stack``."""
    return [
        fastapi_clerk_auth(issuer, tokens, stack, cache_keys=False),
        fastapi_clerk_auth(issuer, tokens, stack, cache_keys=True),
        clerk_backend_api(issuer, tokens),
    ]
