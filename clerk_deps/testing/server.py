"""Run an ASGI app on 127.0.0.1 in a background thread, for tests over real loopback HTTP.

uvicorn comes with the ``testing`` extra (``pip install 'clerk-deps[testing]'``), not with the
package itself, so it is imported only when a server is started; without it the entry points
that need it (:func:`serve_app`, ``FakeClerk.serve``, ``clerk-deps emulator``) raise
:class:`TestingExtraMissing`, whose one-line message names the extra.
"""

from __future__ import annotations

import importlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Literal

from starlette.types import ASGIApp

__all__ = ["TestingExtraMissing", "require_testing_extra", "serve_app"]

LOOPBACK = "127.0.0.1"
TESTING_EXTRA = "pip install 'clerk-deps[testing]'"


class TestingExtraMissing(ImportError):
    """A testing-kit entry point needs a package of the ``testing`` extra that is missing."""

    __test__ = False  # not a test class, whatever pytest's name pattern says

    def __init__(self, feature: str, module: str) -> None:
        super().__init__(
            f"{feature} needs {module}, which comes with the testing extra: {TESTING_EXTRA}",
            name=module,
        )


def require_testing_extra(module: str, feature: str) -> ModuleType:
    """Import ``module``, a package of the ``testing`` extra, or raise TestingExtraMissing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise TestingExtraMissing(feature, module) from None


def _import_uvicorn() -> ModuleType:
    return require_testing_extra("uvicorn", "serving on 127.0.0.1")


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if port:  # a fixed port is reusable at once after the previous server stopped
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, port))
    except OSError:
        sock.close()
        raise
    return sock


@contextmanager
def serve_app(
    app: ASGIApp,
    *,
    port: int = 0,
    lifespan: Literal["auto", "on", "off"] = "auto",
    startup_timeout: float = 10.0,
) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1; yields its base URL (``http://127.0.0.1:<port>``).

    ``port=0`` (the default) takes a free port. The port is bound before the server starts, so
    two servers never race for it, and a port in use fails at once with ``OSError``. The block
    runs once the app's lifespan start-up has finished; on exit the server shuts down
    gracefully and its thread is joined. A start-up that fails (for example a lifespan that
    raises) is reported as ``RuntimeError`` with uvicorn's log as the detail.
    """
    uvicorn: Any = _import_uvicorn()
    sock = _bind(port)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        interface="asgi3",  # auto-detection mistakes bound methods for ASGI2 apps
        lifespan=lifespan,
        log_config=None,  # leave the test process's logging configuration alone
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as error:  # reported to the caller by _wait_until_started
            outcome.append(error)

    thread = threading.Thread(target=run, name=f"clerk-deps-server-{port}", daemon=True)
    thread.start()
    try:
        _wait_until_started(server, thread, startup_timeout, outcome)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
        if thread.is_alive():  # pragma: no cover - a request that never finishes
            server.force_exit = True
            thread.join(timeout=startup_timeout)
        sock.close()


def _wait_until_started(
    server: Any, thread: threading.Thread, timeout: float, outcome: list[BaseException]
) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            cause = f" ({type(outcome[0]).__name__})" if outcome else ""
            raise RuntimeError(
                f"the server did not start{cause}; see the uvicorn.error log for the reason"
            )
        if time.monotonic() > deadline:  # pragma: no cover - a start-up that hangs
            server.should_exit = True
            raise RuntimeError(f"the server did not start within {timeout:g} s")
        time.sleep(0.005)  # start-up polling: the only sleep in the testing kit
