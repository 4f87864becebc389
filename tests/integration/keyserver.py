"""Real HTTP servers on 127.0.0.1 for the key-cache tests.

``ServerThread`` runs any ASGI app under uvicorn in a background thread (its own event loop),
on a free port that stays the same across ``stop()`` / ``start()``, so a test can take a key
server down and bring it back at the same URL.

``KeyServer`` is a JWKS endpoint that counts what reaches it and misbehaves on demand: it can
hold requests until released, fail, send garbage, drip its body, or serve rotated keys; under
``/v1/jwks`` it answers per ``Authorization: Bearer <secret>`` like Clerk's Backend API.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import uvicorn

from clerk_deps.testing import TestIssuer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JWKS_PATH = "/.well-known/jwks.json"
BACKEND_JWKS_PATH = "/v1/jwks"

#: What ``KeyServer.mode`` can be told to do.
MODES = (
    "ok",  # serve the key set
    "hold",  # wait until ``release()``, then serve the key set
    "error",  # HTTP 500
    "drop",  # start a response, then close the connection without a body
    "not-json",  # 200 with an HTML page
    "no-keys",  # 200 with JSON that has no "keys"
    "empty-keys",  # 200 with {"keys": []}
    "no-kid",  # 200 with the RSA key but no "kid"
    "deep-json",  # 200 with JSON nested deeper than the parser's recursion limit
    "huge",  # 200 with a 1 MiB body
    "redirect",  # 302 to another URL
    "drip",  # 200, then one byte every 50 ms until the client hangs up
    "gzip",  # 200 with the key set, Content-Encoding: gzip
    "gzip-bomb",  # 200 with ~130 KiB of gzip that expands to 128 MiB
    "brotli",  # 200 with Content-Encoding: br (bytes that are not the key set as sent)
    "gzip-corrupt",  # 200 with Content-Encoding: gzip and bytes that are not gzip
)


class ServerThread:
    """An ASGI app served by uvicorn on 127.0.0.1 in a daemon thread."""

    def __init__(self, app: ASGIApp, *, lifespan: str = "off") -> None:
        self.app = app
        self.lifespan = lifespan
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        """Serve (on the port used before, if any); return once the socket listens."""
        if self._server is not None:
            return
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            loop="asyncio",
            http="h11",
            interface="asgi3",
            lifespan=self.lifespan,
            log_config=None,  # leave the test run's logging (and caplog) alone
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"uvicorn-{self.port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.005)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        self._server, self._thread = server, thread

    def stop(self) -> None:
        """Close the listening socket and every connection; return once the port is free."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True  # idle keep-alive connections are closed at once
        thread.join(timeout=10)
        self._server = self._thread = None

    # Async twins, so a test running on an event loop never blocks it (blockbuster watches).
    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)


@dataclass(frozen=True)
class Hit:
    """One request that reached the key server."""

    path: str
    authorization: str | None
    accept_encoding: str | None = None


class KeyServer(ServerThread):
    """A JWKS server on 127.0.0.1 that counts its requests and misbehaves on demand."""

    def __init__(self, issuer: TestIssuer) -> None:
        super().__init__(self._app)
        self.hits: list[Hit] = []
        self.mode = "ok"
        self.key_set: dict[str, Any] = issuer.jwks()
        #: ``/v1/jwks`` key sets, by the secret key sent as Bearer token.
        self.key_sets_by_secret: dict[str, dict[str, Any]] = {}
        self.holding = threading.Event()  # set while a request is held in "hold" mode
        self._release: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    @property
    def jwks_url(self) -> str:
        return f"{self.url}{JWKS_PATH}"

    @property
    def count(self) -> int:
        """How many requests reached the server."""
        return len(self.hits)

    def serve(self, *issuers: TestIssuer) -> None:
        """Publish exactly the keys of ``issuers`` (a rotation when they are new keys)."""
        self.key_set = {"keys": [key for i in issuers for key in i.jwks()["keys"]]}

    def reset(self, issuer: TestIssuer) -> None:
        self.release()
        self.hits.clear()
        self.mode = "ok"
        self.key_set = issuer.jwks()
        self.key_sets_by_secret.clear()

    def release(self) -> None:
        """Let the requests held so far through ("hold" mode goes on holding later ones)."""
        with self._lock:
            loop, event = self._loop, self._release
            self._loop = self._release = None
            self.holding.clear()
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    async def wait_until_holding(self, timeout: float = 5) -> None:
        """Return once a request is held; fail the test if none arrives in ``timeout``."""
        if not await asyncio.to_thread(self.holding.wait, timeout):
            raise AssertionError(f"no request reached the key server within {timeout} s")

    def stop(self) -> None:
        self.release()
        super().stop()

    # -- the ASGI app ----------------------------------------------------------------

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        hit = Hit(scope["path"], headers.get("authorization"), headers.get("accept-encoding"))
        self.hits.append(hit)
        if scope["path"] == BACKEND_JWKS_PATH:
            secret = (headers.get("authorization") or "").removeprefix("Bearer ")
            key_set = self.key_sets_by_secret.get(secret)
            if key_set is None:
                await _respond(send, 401, {"errors": [{"code": "authentication_invalid"}]})
            else:
                await _respond(send, 200, key_set)
            return
        if scope["path"] != JWKS_PATH:
            await _respond(send, 404, {"detail": "not found"})
            return
        await self._answer(self.mode, receive, send)

    async def _answer(self, mode: str, receive: Receive, send: Send) -> None:
        if mode == "hold":
            await self._hold()
            mode = "ok"
        if mode == "ok":
            await _respond(send, 200, self.key_set)
        elif mode == "error":
            await _respond(send, 500, {"error": "internal"})
        elif mode == "drop":
            await send({"type": "http.response.start", "status": 200, "headers": _LENGTH_100})
            # returning without the promised body makes uvicorn close the connection
        elif mode == "not-json":
            await _respond_raw(send, 200, b"<html>Clerk is down</html>", b"text/html")
        elif mode == "no-keys":
            await _respond(send, 200, {"error": "no keys here"})
        elif mode == "empty-keys":
            await _respond(send, 200, {"keys": []})
        elif mode == "no-kid":
            keys = [{k: v for k, v in key.items() if k != "kid"} for key in self.key_set["keys"]]
            await _respond(send, 200, {"keys": keys})
        elif mode == "deep-json":
            await _respond_raw(send, 200, b"[" * 50_000 + b"]" * 50_000, b"application/json")
        elif mode == "huge":
            padding = "x" * (1024 * 1024)
            await _respond(send, 200, {**self.key_set, "padding": padding})
        elif mode == "redirect":
            headers = [(b"location", b"https://elsewhere.example/jwks"), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 302, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
        elif mode == "drip":
            await self._drip(receive, send)
        elif mode == "gzip":
            body = gzip.compress(json.dumps(self.key_set).encode())
            await _respond_raw(send, 200, body, b"application/json", b"gzip")
        elif mode == "gzip-corrupt":
            await _respond_raw(send, 200, b"not gzip at all", b"application/json", b"gzip")
        elif mode == "gzip-bomb":
            await _respond_raw(send, 200, gzip_bomb(), b"application/json", b"gzip")
        elif mode == "brotli":
            await _respond_raw(
                send, 200, json.dumps(self.key_set).encode(), b"application/json", b"br"
            )
        else:  # pragma: no cover - a typo in a test
            raise ValueError(f"unknown mode {mode!r}")

    async def _hold(self) -> None:
        with self._lock:
            if self._release is None:
                self._loop = asyncio.get_running_loop()
                self._release = asyncio.Event()
            event = self._release
            self.holding.set()
        await event.wait()

    async def _drip(self, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": _JSON})
        await send({"type": "http.response.body", "body": b'{"keys": [', "more_body": True})
        while True:  # one byte every 50 ms until the client hangs up
            try:
                message = await asyncio.wait_for(receive(), 0.05)
            except asyncio.TimeoutError:
                await send({"type": "http.response.body", "body": b" ", "more_body": True})
                continue
            if message["type"] == "http.disconnect":
                return


_JSON = [(b"content-type", b"application/json")]
BOMB_EXPANDED_BYTES = 128 * 1024 * 1024


@functools.cache
def gzip_bomb() -> bytes:
    """A key set's opening followed by 128 MiB of spaces, gzipped (~130 KiB), built in
    1 MiB steps so that making it never holds the expanded body."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(b'{"keys": [')]
    step = b" " * (1024 * 1024)
    parts.extend(compressor.compress(step) for _ in range(BOMB_EXPANDED_BYTES // len(step)))
    parts.append(compressor.compress(b"]}") + compressor.flush())
    return b"".join(parts)


_LENGTH_100 = [(b"content-type", b"application/json"), (b"content-length", b"100")]


async def _respond(send: Send, status: int, body: Any) -> None:
    await _respond_raw(send, status, json.dumps(body).encode(), b"application/json")


async def _respond_raw(
    send: Send, status: int, body: bytes, content_type: bytes, encoding: bytes | None = None
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if encoding is not None:
        headers.append((b"content-encoding", encoding))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
