"""The example API's OpenAPI document, fuzzed by schemathesis in process: never a 5xx.

Every operation in the document is exercised (so routes added to ``examples/jobs_api.py`` are
covered without touching this file), each generated request is sent three times: with no
token, with a valid token, and with a token forged with the trusted ``kid``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.schemas import OpenApiSchema

from clerk_deps import get_settings
from clerk_deps.testing import TestIssuer
from examples.jobs_api import app

ISSUER = TestIssuer()
CREDENTIALS = {
    "no token": lambda: None,
    "valid token": ISSUER.token,
    "forged token": ISSUER.forged_token,
}


def load_schema() -> OpenApiSchema:
    """The document the app serves at its ``openapi_url``, fetched over ASGI.

    Fetched with a TestClient outside ``with``, so the app's lifespan does not run at import
    time (it would read the real environment). schemathesis' own loaders
    (``openapi.from_asgi``, ``pytest.from_fixture``) cannot be used here: ``from_asgi`` starts
    the lifespan while loading, and ``from_fixture`` breaks on pytest 9 (``_nodeid``).
    """
    assert app.openapi_url is not None
    document = TestClient(app).get(app.openapi_url).json()
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = app  # send generated requests to the app in process, as from_asgi does
    return loaded


schema = load_schema()


@pytest.fixture(scope="module", autouse=True)
def trust_test_issuer() -> Iterator[None]:
    """The app trusts ``ISSUER`` while this module runs. schemathesis starts the app's
    lifespan (``clerk_lifespan``) on the first generated request and keeps it for the
    process, so the override is installed before that."""
    previous = dict(app.dependency_overrides)
    # a webhook signing secret too: without one, POST /webhooks/clerk is a (correct) 500
    settings = ISSUER.settings(webhook_signing_secret="whsec_c2NoZW1hdGhlc2lzLXNjaGVtYXRoZXNpcw==")
    app.dependency_overrides[get_settings] = lambda: settings
    try:
        yield
    finally:
        app.dependency_overrides.clear()
        app.dependency_overrides.update(previous)


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: Any) -> None:
    statuses = {}
    for name, token in CREDENTIALS.items():
        value = token()
        headers = {"Authorization": f"Bearer {value}"} if value else {}
        response = case.call_and_validate(headers=headers, checks=[not_a_server_error])
        assert response.status_code < 500
        statuses[name] = response.status_code
    # A bad token never gets further than no token at all.
    if statuses["no token"] == 401:
        assert statuses["forged token"] == 401


def test_the_schema_covers_the_example_routes() -> None:
    """The example's routes are in the document, and the protected ones show the bearer scheme
    (the parametrized test above only proves something if operations were generated)."""
    document = schema.raw_schema
    paths = document["paths"]
    assert {"/health", "/me", "/jobs"} <= set(paths)
    schemes = document["components"]["securitySchemes"]
    assert any(s.get("scheme", "").lower() == "bearer" for s in schemes.values())
    assert paths["/me"]["get"].get("security")
    assert not paths["/health"]["get"].get("security")
