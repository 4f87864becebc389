"""The documentation site stays true: every setting and reason code is documented, every code
snippet it includes exists and runs, the tests it cites exist, and the site builds strictly.

Code in the docs is included from files (``--8<-- "examples/..."``), never pasted; each included
Python file is run here, and the responses the quickstart shows are compared with real ones.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from clerk_deps import ClerkSettings, ErrorReason
from clerk_deps.testing import TestIssuer, override_clerk_settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# The pages this test module vouches for; other pages have their own tests.
PAGES = [
    "index",
    "configuration",
    "troubleshooting",
    "security",
    "deployment",
    "migrating",
    "authorization",
    "machine",
    "websockets",
    "webhooks",
    "revocation",
]
SNIPPET = re.compile(r'^[ \t]*-{1,}8<-{1,}[ \t]+"([^":]+)(?::[^"]*)?"', re.M)
TEST_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(?:\[([^\]]+)\])?`")
FENCE = re.compile(r"^([ \t]*)```(\w*)[^\n]*\n(.*?)^\1```", re.M | re.S)


KEY_SOURCES = ["jwt_key", "jwks_url", "secret_key"]
TIMES = "\N{MULTIPLICATION SIGN}"


def page(name: str) -> str:
    return (DOCS / f"{name}.md").read_text()


def variables_of(name: str) -> list[str]:
    alias = ClerkSettings.model_fields[name].validation_alias
    return list(getattr(alias, "choices", [f"CLERK_{name.upper()}"]))


def sections(text: str, level: str = "###") -> dict[str, str]:
    """Heading line -> the text up to the next heading of the same or a higher level."""
    parts = re.split(rf"^(#{{2,{len(level)}}} .*)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


# -- configuration.md ----------------------------------------------------------------------


def settings_rows() -> dict[str, str]:
    rows = {}
    for line in page("configuration").splitlines():
        found = re.match(r"\| `(\w+)` \|", line)
        if found:
            rows[found.group(1)] = line
    return rows


@pytest.mark.parametrize("name", list(ClerkSettings.model_fields))
def test_configuration_documents_every_setting(name: str) -> None:
    row = settings_rows().get(name)
    assert row is not None, f"docs/configuration.md has no table row for ClerkSettings.{name}"
    cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
    assert len(cells) == 4, row  # field | variable(s) | default | meaning
    for variable in variables_of(name):
        assert f"`{variable}`" in cells[1], f"{variable} missing from the row of {name}"
    default = ClerkSettings.model_fields[name].get_default(call_default_factory=True)
    if isinstance(default, bool):
        assert f"`{str(default).lower()}`" in cells[2], row
    elif isinstance(default, (int, float)):
        assert f"`{default:g}`" in cells[2], row
    elif isinstance(default, str):
        assert default in cells[2], row
    elif default == []:
        assert "empty" in cells[2], row
    else:
        assert default is None and ("none" in cells[2] or "{issuer}" in cells[2]), row
    assert len(cells[3]) > 20, f"the meaning of {name} is not explained"


def test_configuration_has_no_stale_settings() -> None:
    assert set(settings_rows()) == set(ClerkSettings.model_fields)


def test_configuration_states_the_source_order() -> None:
    text = page("configuration")
    order = [text.index(s) for s in ("keyword arguments", "real environment variables")]
    order += [text.index(s, order[-1]) for s in ("`.env.local`", "`.env`")]
    assert order == sorted(order), "precedence must read: keywords, env, .env.local, .env"
    sources = [text.index(f"{n}. `{name}`") for n, name in enumerate(KEY_SOURCES, start=1)]
    assert sources == sorted(sources), "key source order: jwt_key, jwks_url, secret_key"


# -- troubleshooting.md --------------------------------------------------------------------


@pytest.mark.parametrize("reason", [reason.value for reason in ErrorReason])
def test_troubleshooting_has_an_entry_per_reason(reason: str) -> None:
    entries = sections(page("troubleshooting"))
    body = entries.get(f"### `{reason}`")
    assert body is not None, f"docs/troubleshooting.md has no '### `{reason}`' entry"
    from clerk_deps.errors import status_for

    assert f"`{status_for(ErrorReason(reason))}`" in body, f"{reason}: status not stated"
    for part in ("**What it means.**", "**Usual cause.**", "**Fix.**"):
        assert part in body, f"{reason}: no {part}"


def test_troubleshooting_covers_the_seed_decision_tree() -> None:
    """Each branch of the decision tree our users wrote down has its own anchored entry."""
    text = page("troubleshooting")
    entries = {
        "not-configured": ("500", "load_dotenv", "working directory"),
        "missing-aud": ("CLERK_JWT_AUDIENCE", "CLERK_AUDIENCE"),
        "expired-after-60-s": ("60 seconds",),
        "key-rotation": ("CLERK_JWT_KEY", "restart"),
        "missing-email": ("`email`", "user.sub"),
        "reload-vs-restart": ("--reload", "--reload-include .env"),
    }
    found = sections(text)
    for anchor, phrases in entries.items():
        heading = next((h for h in found if h.endswith(f"{{ #{anchor} }}")), None)
        assert heading is not None, f"no entry anchored #{anchor}"
        for phrase in phrases:
            assert phrase in found[heading], f"#{anchor} does not mention {phrase}"
        assert f"](#{anchor})" in text, f"#{anchor} is not linked from the decision tree"


# -- security.md and deployment.md: cited tests exist ----------------------------------------


def cited_tests() -> list[tuple[str, str, str | None]]:
    found = []
    for name in PAGES:
        found += [(m[0], m[1], m[2] or None) for m in TEST_REFERENCE.findall(page(name))]
    return found


def test_security_attack_table_is_complete() -> None:
    attacks = [
        "algorithm confusion",
        "`alg: none`",
        "forged signature with a real `kid`",
        "replay after expiry",
        "foreign `azp`",
        "cross-instance keys",
        "template tokens on session routes",
        "oversized tokens",
        "key-server outage",
        "`kid` floods",
    ]
    rows = [line for line in page("security").splitlines() if line.startswith("| ")]
    for attack in attacks:
        row = next((r for r in rows if r.startswith(f"| {attack} |")), None)
        assert row is not None, f"no row for {attack}"
        assert TEST_REFERENCE.search(row), f"{attack}: no test named"


@pytest.mark.parametrize(("path", "function", "case"), cited_tests())
def test_cited_test_exists(path: str, function: str, case: str | None) -> None:
    source = ROOT / path
    assert source.is_file(), f"{path} does not exist"
    text = source.read_text()
    assert re.search(rf"^(?:async )?def {function}\(", text, re.M), f"{path}::{function}"
    if case is not None:
        assert f'"{case}"' in text, f"{path}::{function}[{case}]: no such case"


def test_security_states_the_order_of_checks() -> None:
    text = page("security")
    steps = ["**Size and shape.**", "**Algorithm.**", "**Key lookup.**", "**Signature.**"]
    steps.append("**Claims**")
    positions = [text.index(step) for step in steps]
    assert positions == sorted(positions)


def test_deployment_arithmetic_matches_the_defaults() -> None:
    defaults = ClerkSettings.model_fields
    ttl = float(defaults["jwks_cache_ttl"].default)
    cooldown = float(defaults["jwks_refresh_cooldown"].default)
    text = page("deployment")
    assert f"N {TIMES} 3600 / {ttl:g}" in text and f"N {TIMES} 3600 / {cooldown:g}" in text
    for processes in (10, 100, 1000):
        row = next(line for line in text.splitlines() if line.startswith(f"| {processes:,} |"))
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        assert cells == [
            f"{processes:,}",
            f"{processes * 3600 / ttl:,.0f}",
            f"{processes / ttl:.2g}",
            f"{processes * 3600 / cooldown:,.0f}",
            f"{processes / cooldown:,.0f}",
        ], row


def test_deployment_names_the_logger() -> None:
    text = page("deployment")
    assert "**`clerk_deps`**" in text
    import clerk_deps.keys

    assert clerk_deps.keys.logger.name == "clerk_deps"


# -- snippets: they exist, they are included rather than pasted, and they run --------------------


def included_paths() -> set[str]:
    paths: set[str] = set()
    for markdown in DOCS.glob("*.md"):
        paths |= set(SNIPPET.findall(markdown.read_text()))
    return paths


def test_every_snippet_path_exists() -> None:
    paths = included_paths()
    assert "examples/quickstart_app.py" in paths
    for path in sorted(paths):
        assert (ROOT / path).is_file(), f"--8<-- {path!r}: no such file"


@pytest.mark.parametrize("name", PAGES)
def test_python_in_these_pages_is_included_not_pasted(name: str) -> None:
    for _indent, language, body in FENCE.findall(page(name)):
        if language in ("python", "py"):
            lines = [line.strip() for line in body.strip().splitlines()]
            assert all(SNIPPET.match(line) for line in lines), (
                f"docs/{name}.md pastes Python code; include it from a tested file instead"
            )


def test_every_included_example_is_run_here() -> None:
    included = {path for path in included_paths() if path.endswith(".py")}
    included = {path for path in included if not path.startswith("docs/snippets/testing_")}
    assert included == set(RUNNERS), "each included Python file needs a runner in RUNNERS"


def load(path: str) -> ModuleType:
    """Execute an example file as a fresh module, as `uvicorn examples.x:app` would."""
    name = "docs_example_" + re.sub(r"\W", "_", path)
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def trust(issuer: TestIssuer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment of a reader who set CLERK_ISSUER and CLERK_JWT_KEY, in a clean folder."""
    monkeypatch.setenv("CLERK_ISSUER", issuer.issuer)
    monkeypatch.setenv("CLERK_JWT_KEY", issuer.public_pem.replace("\n", "\\n"))


def documented_responses() -> dict[int, object]:
    blocks = re.findall(r"<!-- response: (\d+) -->\n```json\n(.*?)```", page("index"), re.S)
    return {int(status): json.loads(body) for status, body in blocks}


def run_quickstart(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    assert len((ROOT / "examples/quickstart_app.py").read_text().strip().splitlines()) <= 10
    issuer = TestIssuer()
    trust(issuer, monkeypatch)
    shown = documented_responses()
    assert set(shown) == {200, 401}
    ok_body = shown[200]
    assert isinstance(ok_body, dict)
    with TestClient(load("examples/quickstart_app.py").app) as client:  # runs the lifespan
        ok = client.get("/me", headers=bearer(issuer.token(ok_body["user_id"])))
        assert (ok.status_code, ok.json()) == (200, ok_body)
        missing = client.get("/me")
        assert (missing.status_code, missing.json()) == (401, shown[401])
        assert missing.headers["www-authenticate"] == "Bearer"
        expired = client.get("/me", headers=bearer(issuer.expired_token()))
        assert expired.json()["detail"]["reason"] == "token-expired"
        assert expired.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def run_settings_in_code(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    issuer = TestIssuer()
    trust(issuer, monkeypatch)
    monkeypatch.setenv("CLERK_AUTHORIZED_PARTIES", "https://overridden.example")
    monkeypatch.setenv("CLERK_LEEWAY", "30")
    module = load("examples/docs_settings_in_code.py")
    (settings,) = module.clerk.settings
    assert settings.issuer == issuer.issuer  # from the environment
    assert settings.leeway == 2  # the keyword beats CLERK_LEEWAY
    with TestClient(module.app) as client:
        assert module.app.dependency_overrides == {}
        local = "http://localhost:3000"
        allowed = client.get("/me", headers=bearer(issuer.token("user_1", azp=local)))
        assert allowed.json() == {"user_id": "user_1", "origin": local}
        foreign = client.get("/me", headers=bearer(issuer.token(azp="https://overridden.example")))
        assert foreign.status_code == 401
        assert foreign.json()["detail"]["reason"] == "token-invalid-authorized-parties"
        admin = issuer.token("user_a", azp=local, org_role="admin")
        deleted = client.delete("/projects/p1", headers=bearer(admin))
        assert deleted.json() == {"deleted": "p1", "by": "user_a"}
        member = issuer.token(azp=local, org_role="member")
        refused = client.delete("/projects/p1", headers=bearer(member))
        assert refused.json()["detail"]["reason"] == "org-role-required"


def run_several_instances(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    prod, staging = TestIssuer.several(2)
    for name, issuer in (("PROD", prod), ("STAGING", staging)):
        host = issuer.issuer.removeprefix("https://")
        key = "pk_test_" + base64.b64encode(f"{host}$".encode()).decode().rstrip("=")
        monkeypatch.setenv(f"{name}_CLERK_PUBLISHABLE_KEY", key)
    module = load("examples/docs_several_instances.py")
    assert [s.issuer for s in module.clerk.settings] == [prod.issuer, staging.issuer]
    client = TestClient(module.app)  # no lifespan: these issuers cannot be reached from here
    foreign = client.get("/me", headers=bearer(TestIssuer().token()))
    assert foreign.json()["detail"]["reason"] == "token-invalid-issuer"
    # The same routing with key sets this test holds (networkless settings of each instance)
    trusted = [
        prod.settings(authorized_parties=["https://app.example.com"]),
        staging.settings(authorized_parties=["https://staging.example.com"]),
    ]
    with override_clerk_settings(module.app, trusted, auth=module.clerk):
        for issuer, origin in (
            (prod, "https://app.example.com"),
            (staging, "https://staging.example.com"),
        ):
            response = client.get("/me", headers=bearer(issuer.token("user_i", azp=origin)))
            assert response.json() == {"user_id": "user_i", "instance": issuer.issuer}
        crossed = client.get("/me", headers=bearer(prod.token(azp="https://staging.example.com")))
        assert crossed.json()["detail"]["reason"] == "token-invalid-authorized-parties"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_production_app(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    issuer = TestIssuer()
    trust(issuer, monkeypatch)
    with TestClient(load("examples/docs_production_app.py").app) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        token = issuer.token("user_prod")
        assert client.get("/me", headers=bearer(token)).json()["user_id"] == "user_prod"
        assert client.get("/me").json()["detail"]["reason"] == "session-token-missing"

    # The key server is unreachable: start-up only warns, public routes work, protected routes
    # answer 503 with Retry-After, and the warning names the cause but never a token.
    from clerk_deps import get_settings

    monkeypatch.delenv("CLERK_JWT_KEY")
    monkeypatch.setenv("CLERK_ISSUER", f"http://127.0.0.1:{closed_port()}")
    get_settings.cache_clear()
    caplog.set_level(logging.WARNING, logger="clerk_deps")
    token = issuer.token("user_prod")
    with TestClient(load("examples/docs_production_app.py").app) as client:
        assert client.get("/healthz").status_code == 200
        down = client.get("/me", headers=bearer(token))
        assert down.status_code == 503
        assert down.json()["detail"]["reason"] == "jwk-failed-to-load"
        assert int(down.headers["retry-after"]) >= 1
    warnings = [r for r in caplog.records if r.name == "clerk_deps" and r.levelname == "WARNING"]
    assert warnings, "an unreachable key server must be logged under 'clerk_deps'"
    assert "127.0.0.1" in caplog.text
    assert token not in caplog.text and token.split(".")[2] not in caplog.text


def run_migrating(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    issuer = TestIssuer()
    trust(issuer, monkeypatch)
    client = TestClient(load("examples/docs_migrating.py").app)
    token = issuer.token("user_m", role="editor")
    assert client.get("/me", headers=bearer(token)).json()["role"] == "editor"
    assert client.get("/me").status_code == 401  # was a 403 "Forbidden"
    assert client.get("/feed").json() == {"feed": "public"}
    assert client.get("/feed", headers=bearer(token)).json() == {"feed": "personal feed of user_m"}
    forged = client.get("/feed", headers=bearer(issuer.forged_token()))
    assert forged.status_code == 401  # a bad token is never "anonymous"
    assert forged.json()["detail"]["reason"] == "token-invalid-signature"
    assert client.get("/projects/", headers=bearer(token)).json() == {"owner": "user_m"}
    assert client.get("/projects/").status_code == 401


def run_audit(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    issuer = TestIssuer()
    trust(issuer, monkeypatch)
    client = TestClient(load("examples/docs_audit.py").app)
    token = issuer.token("user_auditor", email="auditor@example.com")
    response = client.post("/reports/r-7/approve", headers=bearer(token))
    assert response.json() == {"approved": "r-7", "by": "user_auditor"}
    assert client.post("/reports/r-8/approve").status_code == 401
    (path,) = Path("logs/audit").glob("audit_*.jsonl")
    (line,) = path.read_text().splitlines()
    record = json.loads(line)
    assert record["user_id"] == "user_auditor" and record["resource"] == "r-7"
    assert record["action"] == "report.approve" and record["alcoa_attributable"] is True
    assert token not in line


def _as_user(app: FastAPI, **fields: Any) -> TestClient:
    from clerk_deps import ClerkClaims, require_clerk_user

    claims = ClerkClaims(sub="user_doc", iat=1, exp=2, **fields)
    app.dependency_overrides[require_clerk_user] = lambda: claims
    return TestClient(app)


def _reason(response: Any) -> str:
    body = response.json()
    return str(body["detail"]["reason"] if "detail" in body else body["clerk_error"]["reason"])


def run_authorization_routes(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    app = FastAPI()
    app.include_router(load("docs/snippets/authorization_routes.py").router)
    admin = _as_user(app, org_id="org_1", org_role="admin")
    assert admin.get("/org/settings").json() == {"org_id": "org_1", "role": "org:admin"}
    member = _as_user(app, org_id="org_1", org_role="member")
    assert _reason(member.get("/org/settings")) == "org-role-required"
    assert _reason(member.delete("/projects/p1")) == "org-permission-required"
    deleter = _as_user(app, org_id="org_1", org_permissions=["org:projects:delete"])
    assert deleter.delete("/projects/p1").json() == {"deleted": "p1"}
    responses = app.openapi()["paths"]["/org/settings"]["get"]["responses"]
    assert {"401", "403"} <= set(responses)


def run_authorization_billing(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    app = load("docs/snippets/authorization_billing.py").app
    paying = _as_user(app, org_id="org_1", fea="o:reports", pla="u:pro")
    assert paying.get("/reports").json() == {"reports": []}
    assert paying.get("/priority-support").json() == {"queue": "priority"}
    free = _as_user(app, org_id="org_1", fea="u:export", pla="u:free")
    assert _reason(free.get("/reports")) == "feature-required"
    assert _reason(free.get("/priority-support")) == "plan-required"


def run_authorization_stepup(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    app = load("docs/snippets/authorization_stepup.py").app
    fresh = _as_user(app, fva=(0, 0))
    assert fresh.post("/payouts").json() == {"paid_by": "user_doc"}
    assert fresh.post("/api-keys").json() == {"created": True}
    stale = _as_user(app, fva=(120, 120))
    refused = stale.post("/payouts")
    assert refused.status_code == 403
    assert refused.json() == {
        "clerk_error": {
            "type": "forbidden",
            "reason": "reverification-error",
            "metadata": {"reverification": {"level": "second_factor", "afterMinutes": 10}},
        }
    }
    assert stale.post("/email").status_code == 403


def run_self_checking(path: str) -> Runner:
    """Snippets that assert their own results: executing them is the test."""

    def run(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
        load(path)

    return run


def run_machine_routes(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    from clerk_deps import get_settings
    from clerk_deps.machine_verify import clear_verifiers
    from clerk_deps.testing import FakeClerk, override_machine

    app = load("docs/snippets/machine_routes.py").app
    with override_machine(app, token_type="api_key", subject="org_1", scopes=["invoices:read"]):
        client = TestClient(app)
        assert client.get("/invoices").json() == {"owner": "org_1", "invoices": []}
        assert _reason(client.post("/jobs/sync")) == "token-type-mismatch"
    with override_machine(app, token_type="m2m_token"):
        assert TestClient(app).post("/jobs/sync").json() == {"started": True}
    clear_verifiers()
    with FakeClerk().serve() as fake:
        app.dependency_overrides[get_settings] = fake.settings
        client = TestClient(app)
        key = fake.create_api_key("user_1", name="cli", scopes=["read"])
        headers = {"Authorization": f"Bearer {key['secret']}"}
        assert client.get("/projects", headers=headers).json() == {
            "api_key": "cli",
            "owner": "user_1",
        }
        assert client.get("/whoami", headers=headers).json()["type"] == "api_key"
        assert _reason(client.get("/invoices", headers=headers)) == "scope-required"
        user = fake.create_user()
        token = fake.session_token(fake.create_session(user["id"])["id"])
        session = {"Authorization": f"Bearer {token}"}
        assert client.get("/projects", headers=session).json() == {"user": user["id"]}
        assert _reason(client.get("/whoami", headers=session)) == "token-type-mismatch"
    clear_verifiers()


def run_websocket_app(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from starlette.testclient import WebSocketDenialResponse

    issuer = TestIssuer()
    trust(issuer, monkeypatch)
    with TestClient(load("examples/websocket_app.py").app) as client:
        client.cookies.set("__session", issuer.token("user_ws"))
        origin = {"Origin": "https://app.example.com"}
        with client.websocket_connect("/ws", headers=origin) as websocket:
            assert websocket.receive_json() == {"hello": "user_ws"}
            websocket.send_text("hi")
            assert websocket.receive_json() == {"from": "user_ws", "text": "hi"}
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            client.websocket_connect("/ws", headers={"Origin": "https://evil.example"}),
        ):
            pass  # pragma: no cover - refused
        assert refused.value.status_code == 403
        assert refused.value.json()["detail"]["reason"] == "origin-not-allowed"
        client.cookies.clear()
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            client.websocket_connect("/ws", headers=origin),
        ):
            pass  # pragma: no cover - refused
        assert refused.value.json()["detail"]["reason"] == "session-token-missing"


def run_browser_app(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The CORS and WebSocket sections the WebSockets page includes (the page itself runs in
    Chromium in tests/test_browser_page.py)."""
    from starlette.testclient import WebSocketDenialResponse

    issuer = TestIssuer()
    page = "https://app.example.com"
    app = load("examples/browser_app.py").build_app(
        issuer.settings(), page_origin=page, api_url="", sign_in_url="", user_id="user_1"
    )
    client = TestClient(app)
    preflight = client.options(
        "/me",
        headers={
            "Origin": page,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.headers["access-control-allow-origin"] == page
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    foreign = client.options(
        "/me", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in foreign.headers
    client.cookies.set("__session", issuer.token("user_1"))
    assert client.get("/me").json()["user_id"] == "user_1"
    with client.websocket_connect("/ws", headers={"Origin": page}) as websocket:
        assert websocket.receive_json() == {"hello": "user_1"}
    for path, origin, reason in [
        ("/ws", "https://evil.example", "origin-not-allowed"),
        ("/ws/admin", page, "org-role-required"),
    ]:
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            client.websocket_connect(path, headers={"Origin": origin}),
        ):
            pass  # pragma: no cover - refused
        assert (refused.value.status_code, refused.value.json()["detail"]["reason"]) == (
            403,
            reason,
        )
WEBHOOK_SECRET = "whsec_ZG9jcy1kb2NzLWRvY3MtZG9jcy1kb2NzLWRvY3MtMTI="


def _signed(event_type: str, data: dict[str, Any], msg_id: str) -> tuple[bytes, dict[str, str]]:
    import time

    from clerk_deps.webhooks import sign_webhook

    body = json.dumps({"object": "event", "type": event_type, "data": data}).encode()
    stamp = int(time.time())
    signature = sign_webhook(WEBHOOK_SECRET, msg_id, stamp, body)
    return body, {"svix-id": msg_id, "svix-timestamp": str(stamp), "svix-signature": signature}


def run_webhooks_app(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    monkeypatch.setenv("CLERK_WEBHOOK_SIGNING_SECRET", WEBHOOK_SECRET)
    module = load("examples/webhooks_app.py")
    client = TestClient(module.app)
    user = {
        "id": "user_doc",
        "primary_email_address_id": "idn_1",
        "email_addresses": [{"id": "idn_1", "email_address": "doc@example.com"}],
    }
    body, headers = _signed("user.created", user, "msg_doc_1")
    assert client.post("/webhooks/clerk", content=body, headers=headers).json() == {"status": "ok"}
    assert module.users == {"user_doc": {"email": "doc@example.com", "banned": False}}
    refused = client.post("/webhooks/clerk", content=body + b" ", headers=headers)
    assert refused.status_code == 400 and _reason(refused) == "webhook-invalid"
    body, headers = _signed("user.deleted", {"id": "user_doc", "deleted": True}, "msg_doc_2")
    assert client.post("/webhooks/clerk", content=body, headers=headers).status_code == 200
    assert module.users == {}


def run_webhooks_testing(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    load("docs/snippets/webhooks_testing.py")  # asserts its own results


def run_fleet_app(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    from clerk_deps.revocation import clear_revocations

    issuer = TestIssuer()
    trust(issuer, monkeypatch)
    monkeypatch.setenv("CLERK_REVOCATION", "webhooks")
    monkeypatch.setenv("CLERK_WEBHOOK_SIGNING_SECRET", WEBHOOK_SECRET)
    token = issuer.token("user_fleet_doc", sid="sess_fleet_doc")
    try:
        with TestClient(load("examples/fleet_app.py").app) as client:
            assert client.get("/me", headers=bearer(token)).json()["session_id"] == "sess_fleet_doc"
            body, headers = _signed("session.revoked", {"id": "sess_fleet_doc"}, "msg_fleet_doc")
            delivered = client.post("/webhooks/clerk", content=body, headers=headers)
            assert delivered.json() == {"received": "session.revoked"}
            assert _reason(client.get("/me", headers=bearer(token))) == "session-revoked"
    finally:
        clear_revocations()


Runner = Callable[[pytest.MonkeyPatch, pytest.LogCaptureFixture], None]
RUNNERS: dict[str, Runner] = {
    "examples/webhooks_app.py": run_webhooks_app,
    "docs/snippets/webhooks_testing.py": run_webhooks_testing,
    "examples/fleet_app.py": run_fleet_app,
    "docs/snippets/authorization_routes.py": run_authorization_routes,
    "docs/snippets/authorization_decoding.py": run_self_checking(
        "docs/snippets/authorization_decoding.py"
    ),
    "docs/snippets/authorization_billing.py": run_authorization_billing,
    "docs/snippets/authorization_stepup.py": run_authorization_stepup,
    "docs/snippets/authorization_has.py": run_self_checking("docs/snippets/authorization_has.py"),
    "docs/snippets/authorization_testing.py": run_self_checking(
        "docs/snippets/authorization_testing.py"
    ),
    "docs/snippets/machine_routes.py": run_machine_routes,
    "docs/snippets/machine_testing.py": run_self_checking("docs/snippets/machine_testing.py"),
    "examples/docs_audit.py": run_audit,
    "examples/quickstart_app.py": run_quickstart,
    "examples/docs_settings_in_code.py": run_settings_in_code,
    "examples/docs_several_instances.py": run_several_instances,
    "examples/docs_production_app.py": run_production_app,
    "examples/docs_migrating.py": run_migrating,
    "examples/websocket_app.py": run_websocket_app,
    "examples/browser_app.py": run_browser_app,
}


@pytest.mark.parametrize("path", sorted(RUNNERS))
def test_included_example_runs(
    path: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env of the developer's
    RUNNERS[path](monkeypatch, caplog)


# -- the site -----------------------------------------------------------------------------------


def nav_files() -> list[str]:
    text = (ROOT / "mkdocs.yml").read_text()
    nav = text.split("\nnav:\n", 1)[1].split("\n\n", 1)[0]
    return re.findall(r":\s*(\S+\.md)\s*$", nav, re.M)


def test_nav_lists_existing_pages_only() -> None:
    files = nav_files()
    assert files[0] == "index.md"
    for name in PAGES:
        assert f"{name}.md" in files
    for file in files:
        assert (DOCS / file).is_file(), f"mkdocs.yml lists {file}, which does not exist"


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
    reason="mkdocs-material is in the docs extra; `make docs` builds the site",
)
def test_mkdocs_build_is_strict_clean(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # mkdocs-material's release banner
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert not re.search(r"^\s*(WARNING|ERROR)\b", output, re.M), output
    assert (tmp_path / "index.html").is_file()
