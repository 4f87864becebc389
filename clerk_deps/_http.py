"""One shared ``httpx.AsyncClient`` per event loop.

An ``AsyncClient`` keeps a connection pool bound to the loop that created it, and one process
can run several loops (every ``TestClient`` has its own), so the client is kept per loop.
"""

from __future__ import annotations

import asyncio
import weakref

import httpx

_USER_AGENT = "clerk-deps"
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def shared_client() -> httpx.AsyncClient:
    """The client of the running loop, created on first use."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(headers={"User-Agent": _USER_AGENT}, follow_redirects=False)
        _clients[loop] = client
    return client


async def close_shared_client() -> None:
    """Close the running loop's client (called by ``clerk_lifespan`` on shutdown)."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()
