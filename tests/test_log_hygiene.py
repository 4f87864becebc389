"""Log hygiene: no token, signature, payload, secret key or PEM leaks anywhere.

Every log record (any logger, DEBUG and up) is captured while the whole security table runs
and while a Backend API key set fails in every way a server can fail; records, response
bodies, response headers, and the ``str``/``repr`` of errors, settings and test helpers are
searched for the secrets of the run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from fastapi.testclient import TestClient
from test_token_table import ISSUER as TABLE_ISSUER
from test_token_table import ROWS, make_app

from clerk_deps import (
    ClerkAuthError,
    ClerkSettings,
    get_settings,
    verify_token,
    warm_up,
)
from clerk_deps.backend_api import ClerkBackendAPI
from clerk_deps.keys import key_source_for
from clerk_deps.testing import FakeClerk, TestIssuer
from clerk_deps.user_email import CurrentUserWithEmailDep, clear_email_lookups

SECRET = "sk_test_NeverLogThisSecretKey0123456789abcdef"
MIN_NEEDLE = 8  # shorter strings ("sig", "a") occur in ordinary text


def pem_needles(pem: str) -> list[str]:
    """Every base64 line of a PEM document (the armour alone may appear in a hint)."""
    lines = [line.strip() for line in pem.strip().splitlines()]
    return [line for line in lines if not line.startswith("-----")]


PRIVATE_PEM = TABLE_ISSUER.private_key.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
).decode()
STATIC_NEEDLES = [
    SECRET,
    SECRET.removeprefix("sk_test_"),
    *pem_needles(TABLE_ISSUER.public_pem),
    *pem_needles(PRIVATE_PEM),
    "PRIVATE KEY-----",
]


def token_needles(token: str) -> list[str]:
    """The token and each of its segments that is long enough to be recognisable."""
    parts = [token, *token.split(".")]
    return [part for part in parts if len(part) >= MIN_NEEDLE]


def record_texts(record: logging.LogRecord) -> list[str]:
    """Everything a handler could write for ``record``: message, args, exception, extras."""
    texts = [record.getMessage(), str(record.msg), repr(record.args), repr(record.__dict__)]
    if record.exc_info:
        texts.append(logging.Formatter().formatException(record.exc_info))
    texts.extend(text for text in (record.exc_text, record.stack_info) if text)
    return texts


def response_texts(response: httpx.Response) -> list[str]:
    return [response.text, *(f"{name}: {value}" for name, value in response.headers.items())]


def error_texts(error: BaseException) -> list[str]:
    texts = [str(error), repr(error), repr(error.args)]
    if isinstance(error, ClerkAuthError):
        texts += [error.message, repr(error.detail), repr(error.headers)]
    return texts


def assert_no_leak(texts: Iterable[str], needles: Iterable[str], where: str) -> None:
    wanted = [needle for needle in needles if needle]
    for text in texts:
        for needle in wanted:
            assert needle not in text, f"{where} leaks {needle[:24]!r}...: {text[:300]!r}"


def presented_tokens(request: dict[str, Any]) -> list[str]:
    """The credentials a security-table row sends, as the server decodes them (latin-1)."""
    tokens = []
    for value in request.get("headers", {}).values():
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        tokens.append(text.partition(" ")[2].strip() or text)
    tokens.extend(str(value) for value in request.get("cookies", {}).values())
    return tokens


@pytest.fixture
def all_records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records
    caplog.set_level(logging.DEBUG, logger="clerk_deps")
    return caplog


# -- the security table ------------------------------------------------------------------


def test_security_table_leaks_nothing(all_records: pytest.LogCaptureFixture) -> None:
    needles = list(STATIC_NEEDLES)
    texts: list[str] = []
    statuses = set()
    for row in ROWS:
        settings = TABLE_ISSUER.settings(**row.settings)
        request = row.request()
        tokens = presented_tokens(request)
        for token in tokens:
            needles += token_needles(token)
        client = TestClient(make_app(settings), raise_server_exceptions=False)
        client.cookies.update(request.pop("cookies", {}))
        response = client.get("/me", **request)
        statuses.add(response.status_code)
        assert response.status_code == row.status, row.id
        texts += response_texts(response)
        for token in tokens:
            texts += verify_errors(token, settings)
    assert statuses == {200, 401}  # the table ran, both ways
    assert len(needles) > len(ROWS)
    assert_no_leak(texts, needles, "a response or an error")
    for record in all_records.records:
        assert_no_leak(record_texts(record), needles, f"log record {record.name}")


def verify_errors(token: str, settings: ClerkSettings) -> list[str]:
    try:
        asyncio.run(verify_token(token, settings))
    except ClerkAuthError as error:
        return error_texts(error)
    return []


def test_forged_claims_are_not_echoed(all_records: pytest.LogCaptureFixture) -> None:
    """Claim values of a token whose signature failed appear nowhere (contract section 3)."""
    marker = "ForgedClaimMarker"
    forged = [
        TABLE_ISSUER.forged_token(f"user_{marker}", iss=f"https://{marker}.example"),
        TABLE_ISSUER.forged_token(azp=f"https://{marker}.example", sts="pending", aud=marker),
        TABLE_ISSUER.forged_token(exp=1, email=f"{marker}@example.com"),
    ]
    client = TestClient(make_app(TABLE_ISSUER.settings(audience="api")))
    texts = []
    for token in forged:
        response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.json()["detail"]["reason"] == "token-invalid-signature"
        texts += response_texts(response)
        texts += verify_errors(token, TABLE_ISSUER.settings(audience="api"))
    texts += [text for record in all_records.records for text in record_texts(record)]
    assert_no_leak(texts, [marker], "a forged token's claims")


# -- a Backend API key set that fails ------------------------------------------------------


class _Answers:
    status = 500
    body = b""
    seen_authorization: list[str] = []


class _FailingBackend(BaseHTTPRequestHandler):
    """Answers every request with the configured status and a body that echoes the
    credentials it received, as a misbehaving proxy or error page might."""

    answers = _Answers

    def do_GET(self) -> None:
        authorization = self.headers.get("Authorization", "")
        self.answers.seen_authorization.append(authorization)
        body = self.answers.body or f"upstream error for {authorization}".encode()
        self.send_response(self.answers.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def backend() -> Iterator[tuple[str, type[_Answers]]]:
    _Answers.status, _Answers.body, _Answers.seen_authorization = 500, b"", []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FailingBackend)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Answers
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def secret_key_settings(api_url: str) -> ClerkSettings:
    return TABLE_ISSUER.settings(
        secret_key=SECRET, jwt_key=None, issuer=None, api_url=api_url, jwks_refresh_cooldown=0
    )


def run_failing_key_set(settings: ClerkSettings) -> tuple[list[str], list[str]]:
    """Requests and a warm-up against a key source that cannot load; returns what a client,
    a caller or an operator could see, and the secrets of the run."""
    texts: list[str] = []
    app = make_app(settings)
    token = TABLE_ISSUER.token()
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(2):
            response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 503, response.text
            assert response.json()["detail"]["reason"] == "jwk-failed-to-load"
            texts += response_texts(response)
    try:
        asyncio.run(verify_token(token, settings))
    except ClerkAuthError as error:
        assert error.reason.value == "jwk-failed-to-load"
        texts += error_texts(error)
    asyncio.run(warm_up(settings))  # logs a warning, does not raise
    texts += [repr(settings), str(settings), repr(key_source_for(settings))]
    return texts, [*STATIC_NEEDLES, *token_needles(token)]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b""),
        (401, b'{"errors":[{"code":"authentication_invalid"}]}'),
        (200, b"not json " + SECRET.encode()),
        (200, json.dumps({"keys": [], "echo": SECRET}).encode()),
    ],
    ids=["500-echoing-credentials", "401", "200-garbage", "200-no-keys"],
)
def test_failing_backend_key_set_leaks_nothing(
    all_records: pytest.LogCaptureFixture,
    backend: tuple[str, type[_Answers]],
    status: int,
    body: bytes,
) -> None:
    url, answers = backend
    answers.status, answers.body = status, body
    texts, needles = run_failing_key_set(secret_key_settings(url))
    # The secret really was sent (so there was something to leak) and the failure was logged.
    assert f"Bearer {SECRET}" in answers.seen_authorization
    warnings = [r for r in all_records.records if r.name.startswith("clerk_deps")]
    assert any(r.levelno >= logging.WARNING for r in warnings)
    texts += [text for record in all_records.records for text in record_texts(record)]
    assert_no_leak(texts, needles, "a failing key-set fetch")


def test_unreachable_backend_key_set_leaks_nothing(all_records: pytest.LogCaptureFixture) -> None:
    texts, needles = run_failing_key_set(secret_key_settings(closed_port_url()))
    assert any(r.name.startswith("clerk_deps") for r in all_records.records)
    texts += [text for record in all_records.records for text in record_texts(record)]
    assert_no_leak(texts, needles, "an unreachable key server")


# -- repr and str of the objects that hold secrets -------------------------------------------


def test_settings_hide_the_secret_key_and_pem() -> None:
    settings = TABLE_ISSUER.settings(secret_key=SECRET)
    plain = ClerkSettings(_env_file=None, jwt_key=TABLE_ISSUER.public_pem, secret_key=SECRET)  # type: ignore[call-arg]
    for value in (settings, plain):
        assert value.secret_key is not None
        assert value.secret_key.get_secret_value() == SECRET
        assert value.jwt_key  # the PEM is there, just not shown
        shown = [repr(value), str(value), f"{value}", f"{value!r}", value.model_dump_json()]
        assert_no_leak(shown[:4], STATIC_NEEDLES, "ClerkSettings repr/str")
        assert_no_leak(shown[4:], [SECRET], "ClerkSettings JSON")


def test_settings_validation_errors_hide_the_secret_key() -> None:
    with pytest.raises(Exception) as caught:
        ClerkSettings(_env_file=None, secret_key=SECRET, api_url="ftp://nope", leeway=-1)  # type: ignore[call-arg]
    assert_no_leak(error_texts(caught.value), [SECRET], "a settings validation error")


def test_get_settings_error_hides_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_SECRET_KEY", SECRET)
    marker = "Tm90QUtleUJ1dFNlY3JldEJ5dGVz"
    bad_pem = f"-----BEGIN PUBLIC KEY-----\n{marker}\n-----END PUBLIC KEY-----"
    monkeypatch.setenv("CLERK_JWT_KEY", bad_pem)
    get_settings.cache_clear()
    with pytest.raises(ClerkAuthError) as caught:
        get_settings()
    assert caught.value.reason.value == "auth-not-configured"
    assert "CLERK_JWT_KEY" in caught.value.message
    assert_no_leak(error_texts(caught.value), [SECRET, marker], "get_settings()")


def test_test_issuer_and_key_sources_hide_keys() -> None:
    issuer = TestIssuer()
    assert_no_leak([repr(issuer), str(issuer)], STATIC_NEEDLES, "TestIssuer")
    for settings in (
        secret_key_settings("http://127.0.0.1:9"),
        TABLE_ISSUER.settings(),
    ):
        source = key_source_for(settings)
        assert_no_leak([repr(source), str(source)], STATIC_NEEDLES, "a key source")


def test_fake_clerk_hides_its_secret_key() -> None:
    fake = FakeClerk()
    secret = fake.secret_key
    assert secret.startswith("sk_test_")
    shown = [repr(fake), str(fake), repr(fake.settings()), str(fake.settings())]
    assert_no_leak(shown, [secret, secret.removeprefix("sk_test_")], "FakeClerk")


# -- the Backend API client ------------------------------------------------------------------

ECHOING_ERROR = json.dumps(
    {"errors": [{"code": "authentication_invalid", "message": f"bad key {SECRET}"}]}
).encode()


def test_backend_api_client_hides_its_secret_key() -> None:
    for api in (
        ClerkBackendAPI(SECRET, api_url="http://127.0.0.1:9"),
        ClerkBackendAPI.from_settings(secret_key_settings("http://127.0.0.1:9")),
    ):
        assert_no_leak([repr(api), str(api), repr(vars(api))], [SECRET], "ClerkBackendAPI")


def email_app_texts(settings: ClerkSettings, records: pytest.LogCaptureFixture) -> list[str]:
    """A request to a route that looks the email up through a failing Backend API."""

    clear_email_lookups()
    app = FastAPI()

    @app.get("/me")
    async def me(user: CurrentUserWithEmailDep) -> dict[str, Any]:
        return {"sub": user.sub, "email": user.email}

    app.dependency_overrides[get_settings] = lambda: settings
    token = TABLE_ISSUER.token("user_email_lookup")
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    clear_email_lookups()
    assert response.json() == {"sub": "user_email_lookup", "email": None}
    assert any("email" in r.getMessage() for r in records.records if r.name == "clerk_deps")
    texts = response_texts(response)
    return texts + [text for record in records.records for text in record_texts(record)]


@pytest.mark.parametrize(
    "body",
    [b"", b'{"errors":[{"code":"authentication_invalid","message":"Unauthorized"}]}'],
    ids=["500-echoing-credentials", "clerk-style-error"],
)
def test_failing_email_lookup_leaks_nothing(
    all_records: pytest.LogCaptureFixture, backend: tuple[str, type[_Answers]], body: bytes
) -> None:
    url, answers = backend
    answers.body = body
    settings = TABLE_ISSUER.settings(secret_key=SECRET, api_url=url)
    texts = email_app_texts(settings, all_records)
    assert f"Bearer {SECRET}" in answers.seen_authorization
    assert_no_leak(texts, STATIC_NEEDLES, "a failing email lookup")


def test_an_error_body_echoing_the_secret_is_not_logged(
    all_records: pytest.LogCaptureFixture, backend: tuple[str, type[_Answers]]
) -> None:
    url, answers = backend
    answers.status, answers.body = 401, ECHOING_ERROR
    texts = email_app_texts(TABLE_ISSUER.settings(secret_key=SECRET, api_url=url), all_records)
    assert_no_leak(texts, [SECRET], "an error body echoing the secret")
