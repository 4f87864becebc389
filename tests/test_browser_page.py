"""The demo's browser page in headless Chromium: sign in through FakeClerk, then every call.

The page runs in a real browser against real servers on loopback: FakeClerk sets the
``__session`` cookie on sign-in, the page calls the API same-origin with the cookie and
cross-origin with ``Authorization: Bearer`` (CORS), opens WebSockets with the cookie and with
the token subprotocol, and shows a refused WebSocket with its reason. The test reads what the
page shows.
"""

from __future__ import annotations

import json
from typing import Any

from browser_support import chromium

from examples.browser_demo import serve_browser_demo


def shown_results(page: Any) -> dict[str, dict[str, str]]:
    rows = page.locator("#results li")
    return {
        rows.nth(i).get_attribute("data-step"): {
            "status": rows.nth(i).get_attribute("data-status"),
            "reason": rows.nth(i).get_attribute("data-reason"),
            "text": rows.nth(i).inner_text(),
            "answer": rows.nth(i).locator("code").inner_text(),
        }
        for i in range(rows.count())
    }


def test_the_browser_page_shows_every_answer() -> None:
    with chromium() as browser, serve_browser_demo() as url:
        page = browser.new_page()
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto(url)
        assert page.inner_text("#who") == "Signed out."
        assert page.locator("#run").is_disabled()

        page.click("#sign-in")  # FakeClerk sets __session and redirects back
        page.wait_for_selector("#run:not([disabled])", timeout=15_000)
        assert page.inner_text("#who").startswith("Signed in as user_")
        cookie = next(c for c in page.context.cookies() if c["name"] == "__session")
        assert cookie["httpOnly"] is False and cookie["sameSite"] == "Lax"

        page.click("#run")
        page.wait_for_selector("body[data-done]", timeout=30_000)
        results = shown_results(page)
        page.close()

    signed_in = json.loads(results["same-origin"]["answer"].removeprefix("200 "))
    assert signed_in["user_id"].startswith("user_") and signed_in["session_id"]
    assert json.loads(results["cross-origin"]["answer"].removeprefix("200 ")) == signed_in
    assert results["cross-origin-no-token"]["status"] == "401"
    assert results["cross-origin-no-token"]["reason"] == "session-token-missing"
    assert "refused: session-token-missing" in results["cross-origin-no-token"]["answer"]
    hello = {"hello": signed_in["user_id"]}
    assert results["ws-cookie"]["answer"] == f"1000 {json.dumps(hello, separators=(',', ':'))}"
    assert results["ws-subprotocol"]["answer"] == (
        f"1000 {json.dumps(hello, separators=(',', ':'))} subprotocol=clerk"
    )
    assert results["ws-refused"]["status"] == "1008"
    assert results["ws-refused"]["reason"] == "org-role-required"
    assert "refused: org-role-required" in results["ws-refused"]["answer"]
    assert failed == []
