"""The README's usage example runs as written, and .env.example documents every setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from clerk_deps import ClerkSettings
from clerk_deps.testing import TestIssuer

ROOT = Path(__file__).resolve().parent.parent


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(
        r"<!-- usage-example: start -->\n```python\n(.*?)```\n<!-- usage-example: end -->",
        text,
        re.S,
    )
    assert block is not None, "README lost its usage example markers"
    return block.group(1)


def test_readme_starts_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text()[:600]
    assert "make demo" in head and "make test" in head


def test_readme_usage_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    code = readme_example()
    assert len(code.strip().splitlines()) <= 10
    issuer = TestIssuer()
    monkeypatch.setenv("CLERK_ISSUER", issuer.issuer)
    monkeypatch.setenv("CLERK_JWT_KEY", issuer.public_pem.replace("\n", "\\n"))
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    with TestClient(namespace["app"]) as client:  # runs clerk_lifespan
        token = issuer.token("user_readme", email="r@example.com")
        ok = client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert ok.json() == {"user_id": "user_readme", "email": "r@example.com"}
        missing = client.get("/me")
        assert missing.status_code == 401
        assert missing.json()["detail"]["reason"] == "session-token-missing"


def test_env_example_lists_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    for name, field in ClerkSettings.model_fields.items():
        aliases = getattr(field.validation_alias, "choices", [f"CLERK_{name.upper()}"])
        assert re.search(rf"^#? ?{aliases[0]}=", text, re.M), aliases[0]
        for variable in aliases[1:]:
            assert variable in text, variable


def test_readme_names_every_status_a_client_can_get() -> None:
    """401/403 for refusals, and the server-side 500 and 503, each with its reason code."""
    from clerk_deps import ErrorReason
    from clerk_deps.errors import status_for

    text = " ".join((ROOT / "README.md").read_text().split())
    assert "401" in text and "403" in text
    server_side = [ErrorReason.AUTH_NOT_CONFIGURED, ErrorReason.JWK_FAILED_TO_LOAD]
    server_side += [r for r in ErrorReason if r.value == "machine-verification-unavailable"]
    for reason in server_side:
        status = status_for(reason)
        assert f"**{status}** `{reason.value}`" in text, reason
    assert status_for(ErrorReason.AUTH_NOT_CONFIGURED) == 500
    assert status_for(ErrorReason.JWK_FAILED_TO_LOAD) == 503
    assert "Retry-After" in text
    assert "pip install 'clerk-deps[testing]'" in text
