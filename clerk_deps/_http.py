"""One shared ``httpx.AsyncClient`` per event loop.

An ``AsyncClient`` keeps a connection pool bound to the loop that created it, and one process
can run several loops (every ``TestClient`` has its own; a worker may call ``asyncio.run`` per
job), so the client is kept per loop. A pooled connection references its loop, so the client
of a loop that has been closed is dropped the next time a client is created: otherwise every
closed loop, with its client and sockets, would stay alive for the life of the process.
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
        _forget_closed_loops()
        client = httpx.AsyncClient(headers={"User-Agent": _USER_AGENT}, follow_redirects=False)
        _clients[loop] = client
    return client


def _forget_closed_loops() -> None:
    # A closed loop can no longer run ``aclose()``; its sockets close when collected.
    for loop in [loop for loop in list(_clients) if loop.is_closed()]:
        _clients.pop(loop, None)


async def close_shared_client() -> None:
    """Close the running loop's client (called by ``clerk_lifespan`` on shutdown)."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()
