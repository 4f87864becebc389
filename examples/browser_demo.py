"""Serve the browser page of the demo: FakeClerk plus the app on two origins, all on loopback.

``python examples/browser_demo.py`` serves it until Enter or Ctrl-C; ``make demo`` prints the
page's URL at the end of its walkthrough. The page is at ``http://127.0.0.1:<port>/``; the same
app also answers as a cross-origin API on ``http://localhost:<other port>`` (another site, so
the browser sends it no cookie: the page uses ``Authorization: Bearer`` there).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clerk_deps.testing.fakeclerk import FakeClerk
from clerk_deps.testing.server import serve_app
from examples.browser_app import build_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_browser_demo() -> Iterator[str]:
    """Yields the page's URL while FakeClerk, the page's origin and the API origin are served."""
    with FakeClerk().serve() as fake:
        user = fake.create_user(email_address="ada@example.com", first_name="Ada")
        page_port, api_port = free_port(), free_port()
        page_origin = f"http://127.0.0.1:{page_port}"
        app = build_app(
            # the page shows refusals' reasons, which a browser reads only from a 1008 close
            fake.settings(websocket_token_protocol=True, websocket_refusal="close"),
            page_origin=page_origin,
            api_url=f"http://localhost:{api_port}",
            sign_in_url=f"{fake.base_url}/sign-in",
            user_id=user["id"],
        )
        with serve_app(app, port=page_port), serve_app(app, port=api_port):
            yield f"{page_origin}/"


def main() -> int:
    with serve_browser_demo() as url:
        print(f"Browser page: {url}  (press Enter or Ctrl-C to stop)")
        with suppress(EOFError, KeyboardInterrupt):
            input()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
