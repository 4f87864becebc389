"""A real redis-server on a free 127.0.0.1 port, started and stopped by the tests.

The server comes from Debian's ``redis-server`` package (``.ci/run`` installs it on CI). On a
machine without it, the Redis tests are skipped with :data:`SKIP_REASON`, which pytest prints
in its summary.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest

REDIS_SERVER = shutil.which("redis-server")
SKIP_REASON = (
    "Redis tests skipped: redis-server is not installed. Install it with "
    "'sudo apt-get install redis-server' (CI's .ci/run does this) to run them."
)
needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason=SKIP_REASON)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """``start()`` / ``stop()`` a throwaway redis-server (no persistence) on one port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="clerk-deps-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        assert REDIS_SERVER is not None, SKIP_REASON
        self._process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self._dir,
                "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self._answers_ping():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.01)

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Kill the server at once (as a crash would), and wait for it to be gone."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip(SKIP_REASON)
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


def wait_until(
    condition: Callable[[], object], timeout: float = 5.0, what: str = "condition"
) -> float:
    """Poll ``condition()`` until true; returns the seconds it took (fails after ``timeout``)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} not reached within {timeout:g} s")
        time.sleep(0.005)
    return time.monotonic() - start


async def eventually(
    condition: Callable[[], Awaitable[object] | object], timeout: float = 5.0, what: str = "it"
) -> float:
    """:func:`wait_until` for async tests: polls without blocking the event loop."""
    start = time.monotonic()
    while True:
        result = condition()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} not reached within {timeout:g} s")
        await asyncio.sleep(0.005)


__all__ = [
    "SKIP_REASON",
    "RedisServer",
    "eventually",
    "free_port",
    "needs_redis",
    "redis_server",
    "wait_until",
]
