"""Where a protected request's time goes inside FastAPI, without HTTP: the app is called as an
ASGI callable in this process, and the main thread's CPU time per request is measured.

    python bench/route_breakdown.py

Variants of the same trivial route, each with a repeated token (so verification is a cache
hit and what remains is the framework's share) and the protected one also with distinct
tokens:

* ``public``: no dependency;
* ``CurrentUserDep``: clerk_deps as shipped (one async security dependency that resolves the
  settings itself; before this script's findings it was ``get_settings`` -> a bearer scheme ->
  ``require_clerk_user``, with ``get_settings`` run in FastAPI's thread pool per request);
* ``one sync no-op dependency``: ``def dep(): return 1``, to show what one thread-pool hop
  costs on its own;
* ``same 3 dependencies, async settings``: the shipped shape, but settings from an ``async``
  function (no thread-pool hop);
* ``one async dependency``: settings, token extraction and ``verify_token`` in one ``async``
  dependency;
* ``verify_token in the handler``: no dependency at all (the least a route can pay);
* ``CurrentUserDep, get_settings overridden``: the shipped route in a second app that sets
  ``app.dependency_overrides[get_settings]`` (to a function returning the same settings):
  while any override is set, FastAPI rebuilds every dependency of the route on each request.

Not part of ``make bench`` (the table there measures the shipped dependency end to end over
HTTP). The variants are built from public names only: ``get_settings``, ``extract_token``,
``verify_token``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from minting import mint_tokens
from starlette.requests import HTTPConnection, Request

from clerk_deps import ClerkClaims, ClerkSettings, CurrentUserDep, get_settings, verify_token
from clerk_deps.dependencies import extract_token
from clerk_deps.testing import TestIssuer


# Module level: FastAPI resolves the (postponed) annotations of routes in module globals.
async def settings_async() -> ClerkSettings:
    return get_settings()


async def token_async(
    conn: HTTPConnection, settings: Annotated[ClerkSettings, Depends(settings_async)]
) -> str | None:
    return extract_token(conn, settings.session_cookie)


async def user_three(
    settings: Annotated[ClerkSettings, Depends(settings_async)],
    token: Annotated[str | None, Depends(token_async)],
) -> ClerkClaims:
    assert token is not None
    return await verify_token(token, settings)


async def user_one(conn: HTTPConnection) -> ClerkClaims:
    settings = get_settings()
    token = extract_token(conn, settings.session_cookie)
    assert token is not None
    return await verify_token(token, settings)


def sync_noop() -> int:
    return 1


def build_overridden_app() -> FastAPI:
    app = FastAPI(openapi_url=None)
    settings = get_settings()
    app.dependency_overrides[get_settings] = lambda: settings

    @app.get("/shipped")
    async def shipped(user: CurrentUserDep) -> dict[str, bool]:
        return {"ok": True}

    return app


def build_app() -> FastAPI:
    app = FastAPI(openapi_url=None)

    @app.get("/public")
    async def public() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/shipped")
    async def shipped(user: CurrentUserDep) -> dict[str, bool]:
        return {"ok": True}

    @app.get("/sync-noop")
    async def sync_dep(value: Annotated[int, Depends(sync_noop)]) -> dict[str, bool]:
        return {"ok": True}

    @app.get("/three-async")
    async def three(user: Annotated[ClerkClaims, Depends(user_three)]) -> dict[str, bool]:
        return {"ok": True}

    @app.get("/one-async")
    async def one(user: Annotated[ClerkClaims, Depends(user_one)]) -> dict[str, bool]:
        return {"ok": True}

    @app.get("/inline")
    async def inline(request: Request) -> dict[str, bool]:
        settings = get_settings()
        token = extract_token(request, settings.session_cookie)
        assert token is not None
        await verify_token(token, settings)
        return {"ok": True}

    return app


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


async def _cpu_per_request(app: FastAPI, path: str, tokens: Sequence[str]) -> float:
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    start = time.thread_time_ns()
    for token in tokens:
        await app(_scope(path, token), _receive, send)
    elapsed = time.thread_time_ns() - start
    if set(statuses) != {200}:
        raise RuntimeError(f"{path} answered {sorted(set(statuses))}")
    return elapsed / len(tokens) / 1000


VARIANTS = [
    ("public (no dependency)", "/public"),
    ("CurrentUserDep (shipped)", "/shipped"),
    ("one sync no-op dependency", "/sync-noop"),
    ("same 3 dependencies, async settings", "/three-async"),
    ("one async dependency", "/one-async"),
    ("verify_token in the handler", "/inline"),
]


async def breakdown(requests: int = 2000, repeats: int = 5) -> dict[str, float]:
    issuer = TestIssuer()
    os.environ.update(CLERK_JWT_KEY=issuer.public_pem, CLERK_ISSUER=issuer.issuer)
    get_settings.cache_clear()
    app, overridden = build_app(), build_overridden_app()
    tokens = mint_tokens(issuer, requests * repeats + 1)
    repeated = [tokens[-1]] * requests
    for _, path in VARIANTS:
        await _cpu_per_request(app, path, repeated[:200])
    await _cpu_per_request(overridden, "/shipped", repeated[:200])
    runs: dict[str, list[float]] = {}
    for index in range(repeats):
        for name, path in VARIANTS:
            runs.setdefault(name, []).append(await _cpu_per_request(app, path, repeated))
        runs.setdefault("CurrentUserDep, get_settings overridden", []).append(
            await _cpu_per_request(overridden, "/shipped", repeated[: requests // 4])
        )
        distinct = tokens[index * requests : (index + 1) * requests]
        runs.setdefault("CurrentUserDep, distinct tokens", []).append(
            await _cpu_per_request(app, "/shipped", distinct)
        )
    get_settings.cache_clear()
    return {name: statistics.median(values) for name, values in runs.items()}


def main() -> None:
    results = asyncio.run(breakdown())
    public = results["public (no dependency)"]
    print("| route (repeated token unless noted) | us CPU / request | added to public |")
    print("|---|---|---|")
    for name, us in results.items():
        print(f"| {name} | {us:.0f} | {us - public:+.0f} |")


if __name__ == "__main__":
    main()
