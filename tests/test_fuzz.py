"""Property-based hardening: arbitrary headers, cookies and token segments at a protected route.

Whatever arrives, the answer is a 200 for a genuinely valid token and otherwise a 401, 403 or
503 whose JSON body carries a known reason code: never a 5xx, never a stack trace. The core,
``verify_token``, only ever raises ``ClerkAuthError``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clerk_deps import (
    ClerkAuthError,
    ClerkClaims,
    ClerkSettings,
    CurrentUserDep,
    ErrorReason,
    get_settings,
    verify_token,
)
from clerk_deps._http import close_shared_client
from clerk_deps.errors import status_for
from clerk_deps.testing import TestIssuer, sign_jwt
from clerk_deps.testing.issuer import shared_private_key

ISSUER = TestIssuer()
KEY = shared_private_key(0)
REASONS = {reason.value for reason in ErrorReason}
SESSION_CATEGORIES = {"cl_B7d4PD111AAA", "cl_I7d4PD111III"}
TEMPLATE_CATEGORY = "cl_B7d4PD222AAA"
APP_ORIGIN = "https://app.example"

# Enough examples to find shallow bugs on every run in a few seconds; the slower strategies
# (random header and payload dicts) get fewer.
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FUZZ_HEAVY = settings(FUZZ, max_examples=120)


# -- a key-set server on 127.0.0.1, so the kid paths are fuzzed too ------------------------


class _JwksHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(ISSUER.jwks()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JwksHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def variant_settings(name: str, jwks: str) -> ClerkSettings:
    if name == "default":
        return ISSUER.settings()
    if name == "audience":
        return ISSUER.settings(audience="api")
    if name == "authorized_parties":
        return ISSUER.settings(authorized_parties=[APP_ORIGIN])
    if name == "templates":
        return ISSUER.settings(accept_jwt_templates=True)
    if name == "jwks":
        return ISSUER.settings(jwt_key=None, jwks_url=jwks)
    raise AssertionError(name)


VARIANTS = ["default", "audience", "authorized_parties", "templates", "jwks"]


def build_app(app_settings: ClerkSettings) -> FastAPI:
    app = FastAPI()

    @app.get("/me")
    async def me(user: CurrentUserDep) -> dict[str, Any]:
        return {"sub": user.sub}

    @app.get("/claims")
    async def claims(user: CurrentUserDep) -> ClerkClaims:
        """Echoes every claim, as apps that ``return user`` do."""
        return user

    async def fixed_settings() -> ClerkSettings:  # async: no thread hop per request
        return app_settings

    app.dependency_overrides[get_settings] = fixed_settings
    return app


class Client:
    """A synchronous client over ``httpx.ASGITransport(raise_app_exceptions=False)``.

    Like ``TestClient(app, raise_server_exceptions=False)`` (an unhandled exception is
    answered 500, which the invariant then catches), but every request runs on one event loop
    in this thread: TestClient's hop to its portal thread costs more CPU than the whole
    verification, and the fuzzing below sends a few thousand requests.
    """

    def __init__(self, app: FastAPI, loop: asyncio.AbstractEventLoop) -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self._client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self._loop = loop

    def get(self, path: str, *, headers: Any = None) -> httpx.Response:
        return self._loop.run_until_complete(self._client.get(path, headers=headers))

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.run_until_complete(close_shared_client())
        loop.close()


@pytest.fixture(scope="module")
def clients(jwks_url: str, loop: asyncio.AbstractEventLoop) -> Iterator[dict[str, Client]]:
    made = {name: Client(build_app(variant_settings(name, jwks_url)), loop) for name in VARIANTS}
    try:
        yield made
    finally:
        for client in made.values():
            client.close()


# -- the invariant -----------------------------------------------------------------------


def assert_well_formed(response: httpx.Response) -> dict[str, Any]:
    """A 200 with claims, or 401/403/503 with ``{"detail": {"reason", "message"}}``."""
    assert "Traceback" not in response.text
    assert response.status_code in (200, 401, 403, 503), response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    if response.status_code == 200:
        assert isinstance(body.get("sub"), str) and body["sub"]
        return body
    detail = body["detail"]
    assert detail["reason"] in REASONS, detail
    assert isinstance(detail["message"], str) and detail["message"]
    assert status_for(ErrorReason(detail["reason"])) == response.status_code
    if response.status_code == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    if response.status_code == 503:
        assert int(response.headers["retry-after"]) >= 1
    return body


def assert_rejected(response: httpx.Response) -> str:
    """Not a 200 (nothing valid was sent), well formed; returns the reason."""
    body = assert_well_formed(response)
    assert response.status_code != 200, body
    return str(body["detail"]["reason"])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def broken_rules(
    header: dict[str, Any], payload: dict[str, Any], variant: str, now: float
) -> list[str]:
    """Necessary conditions for a 200, written independently of the implementation.

    Returns the rules a token breaks; a token breaking any of them must never be accepted.
    """
    broken = []
    if header.get("alg") != "RS256":
        broken.append("alg")
    sub = payload.get("sub")
    if not isinstance(sub, str) or not sub or sub.startswith("mch_"):
        broken.append("sub")
    for name in ("iat", "exp"):
        value = payload.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            broken.append(name)
        elif abs(value) >= 2**63 or not math.isfinite(value):  # "exp is huge" is invalid
            broken.append(f"{name} out of range")
    times = {
        name: value
        for name, value in payload.items()
        if name in ("exp", "nbf", "iat") and isinstance(value, (int, float))
    }
    if "exp" in times and times["exp"] + 5 <= now:
        broken.append("expired")
    if "nbf" in times and times["nbf"] - 5 > now:
        broken.append("not yet valid")
    if "iat" in times and times["iat"] - 5 > now:
        broken.append("issued in the future")
    if payload.get("iss") != ISSUER.issuer:
        broken.append("iss")
    templates = variant == "templates"
    sid = payload.get("sid")
    if not templates and not (isinstance(sid, str) and sid):
        broken.append("sid")
    cat = header.get("cat")
    allowed = SESSION_CATEGORIES | ({TEMPLATE_CATEGORY} if templates else set())
    if cat is not None and cat not in [*allowed]:
        broken.append("cat")
    if header.get("typ", "JWT") != "JWT":  # absent or exactly JWT on session tokens
        broken.append("typ")
    if payload.get("sts") == "pending":
        broken.append("sts")
    if variant == "audience":
        aud = payload.get("aud")
        if not (aud == "api" or (isinstance(aud, list) and "api" in aud)):
            broken.append("aud")
    if variant == "authorized_parties" and payload.get("azp") != APP_ORIGIN:
        broken.append("azp")
    return broken


# -- strategies --------------------------------------------------------------------------

# The octets an HTTP/1.1 field value can carry: HTAB, SP, VCHAR and obs-text.
FIELD_OCTETS = [9, *range(0x20, 0x7F), *range(0x80, 0x100)]
field_bytes = st.lists(st.sampled_from(FIELD_OCTETS), max_size=120).map(bytes)
unicode_text = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=60).map(
    lambda text: text.encode("utf-8")
)
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
b64url_text = st.text(alphabet=B64URL, max_size=60)
jwt_like = st.lists(
    st.one_of(b64url_text, st.sampled_from(["eyJ", "eyJhbGciOiJSUzI1NiJ9", "", "=", "e30"])),
    min_size=1,
    max_size=5,
).map(".".join)
credentials = st.one_of(
    field_bytes, unicode_text, jwt_like.map(str.encode), st.just(b"").map(bytes)
)
scheme = st.sampled_from(
    [b"Bearer", b"bearer", b"BEARER", b"BeArEr", b"Basic", b"Token", b"", b"Bearer:", b"JWT"]
)
separator = st.sampled_from([b" ", b"  ", b"\t", b"", b" \t ", b"\t\t"])
authorization = st.one_of(
    field_bytes,
    unicode_text,
    st.tuples(separator, scheme, separator, credentials, separator).map(b"".join),
)

huge_ints = st.sampled_from([10**400, -(10**400), 2**63, -(2**63), 2**64 + 1, 2**53 + 1])
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    huge_ints,
    st.floats(allow_nan=True, allow_infinity=True),  # NaN/Infinity become JSON literals
    st.text(max_size=24),
    st.sampled_from(["NaN", "Infinity", "-1", "1e999", "", "pending", "org:admin", "mch_x"]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=5,
)
KNOWN_CLAIMS = [
    "sub", "sid", "iat", "nbf", "exp", "iss", "azp", "sts", "v", "jti", "pla", "fea",
    "email", "fva", "act", "o", "org_id", "org_slug", "org_role", "org_permissions", "aud",
]  # fmt: skip
ALGS = ["RS256", "none", "HS256", "RS512", "rs256", ""]
TYPS = ["JWT", "at+jwt", "application/at+jwt", "AT+JWT", "jwt", "JOSE"]
header_values = {
    "alg": st.one_of(st.sampled_from(ALGS), json_values),
    "kid": st.one_of(st.just(ISSUER.kid), st.text(max_size=20), json_values),
    "typ": st.one_of(st.sampled_from(TYPS), json_values),
    "cat": st.one_of(
        st.sampled_from([*SESSION_CATEGORIES, TEMPLATE_CATEGORY, "cl_B7d4PD333AAA", "cl_x"]),
        json_values,  # lists and dicts too: test_unhashable_cat_is_a_type_mismatch
    ),
}  # fmt: skip


@st.composite
def random_header(draw: st.DrawFn, *, keep_alg: float = 0.7) -> dict[str, Any]:
    header = ISSUER.header()
    for name, values in header_values.items():
        choice = draw(st.sampled_from(["keep", "keep", "delete", "random"]))
        if name == "alg" and draw(st.floats(0, 1)) < keep_alg:
            continue
        if choice == "delete":
            header.pop(name, None)
        elif choice == "random":
            header[name] = draw(values)
    header.update(draw(st.dictionaries(st.text(max_size=8), json_values, max_size=2)))
    return header


@st.composite
def random_payload(draw: st.DrawFn) -> dict[str, Any]:
    payload = ISSUER.claims(draw(st.sampled_from(["user_fuzz", "mch_fuzz", ""])))
    payload["aud"] = "api"
    payload["azp"] = APP_ORIGIN
    for name in draw(st.lists(st.sampled_from(KNOWN_CLAIMS), max_size=3, unique=True)):
        if draw(st.booleans()):
            payload.pop(name, None)
        else:
            payload[name] = draw(json_values)
    for name in ("exp", "iat", "nbf"):
        if draw(st.integers(0, 9)) == 0:  # times around now: expired, not yet valid, ...
            payload[name] = int(time.time()) + draw(st.sampled_from([-3600, -6, 0, 6, 3600]))
    payload.update(draw(st.dictionaries(st.text(max_size=8), json_values, max_size=2)))
    return payload


_minted: list[tuple[float, str]] = []


def fresh_token() -> str:
    """A valid token for ``user_spelled``, re-minted every 20 s (signing costs more than a
    request)."""
    if not _minted or time.monotonic() - _minted[0][0] > 20:
        _minted[:] = [(time.monotonic(), ISSUER.token("user_spelled"))]
    return _minted[0][1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- properties over HTTP ----------------------------------------------------------------


@FUZZ
@given(value=authorization, variant=st.sampled_from(VARIANTS))
def test_arbitrary_authorization_header(
    clients: dict[str, Client], value: bytes, variant: str
) -> None:
    response = clients[variant].get("/me", headers={"Authorization": value})
    reason = assert_rejected(response)
    assert response.status_code == 401, reason


@FUZZ
@given(cookie=st.one_of(field_bytes, unicode_text, jwt_like.map(str.encode)), raw=st.booleans())
def test_arbitrary_session_cookie(clients: dict[str, Client], cookie: bytes, raw: bool) -> None:
    client = clients["default"]
    if raw:  # the whole Cookie header, so the cookie parser is fuzzed too
        headers = {"Cookie": b"__session=" + cookie}
    else:
        headers = {"Cookie": b"theme=dark; __session=" + cookie.replace(b";", b"") + b"; x=1"}
    response = client.get("/me", headers=headers)
    assert assert_rejected(response) != "auth-not-configured"
    assert response.status_code == 401


@FUZZ_HEAVY
@given(
    header=random_header(keep_alg=0.5),
    payload=random_payload(),
    signature=st.binary(max_size=300),
    variant=st.sampled_from(VARIANTS),
)
def test_random_segments_and_signatures(
    clients: dict[str, Client],
    header: dict[str, Any],
    payload: dict[str, Any],
    signature: bytes,
    variant: str,
) -> None:
    token = f"{segment(header)}.{segment(payload)}.{b64(signature)}"
    response = clients[variant].get("/me", headers=bearer(token))
    reason = assert_rejected(response)
    # Nothing here carries a valid signature, so no claim check may be reached; the header's
    # kind (cat, typ) is judged before the key lookup.
    assert reason in {
        "token-invalid",
        "token-invalid-algorithm",
        "token-type-mismatch",
        "jwk-kid-mismatch",
        "token-invalid-signature",
    }, reason
    if reason == "token-type-mismatch":
        assert "cat" in header or "typ" in header


@FUZZ_HEAVY
@given(
    header=random_header(),
    payload=random_payload(),
    variant=st.sampled_from(VARIANTS),
    path=st.sampled_from(["/me", "/claims"]),
)
def test_validly_signed_random_tokens(
    clients: dict[str, Client],
    header: dict[str, Any],
    payload: dict[str, Any],
    variant: str,
    path: str,
) -> None:
    token = sign_jwt(header, payload, KEY)
    response = clients[variant].get(path, headers=bearer(token))
    body = assert_well_formed(response)
    if response.status_code == 200:
        assert broken_rules(header, payload, variant, time.time()) == []
        assert body["sub"] == payload["sub"]
    else:
        assert response.status_code == 401, body


@FUZZ_HEAVY
@given(
    extra_claims=st.dictionaries(
        st.text(max_size=10).map("x_".__add__),
        json_values,
        max_size=4,
    ),
    extra_header=st.dictionaries(
        st.text(max_size=10).map("x_".__add__),
        json_values,
        max_size=2,
    ),
)
def test_unknown_claims_and_header_parameters_are_kept_or_ignored(
    clients: dict[str, Client], extra_claims: dict[str, Any], extra_header: dict[str, Any]
) -> None:
    token = ISSUER.token("user_fuzz", headers=extra_header, **extra_claims)
    response = clients["default"].get("/me", headers=bearer(token))
    assert assert_well_formed(response) == {"sub": "user_fuzz"}


@FUZZ_HEAVY
@given(
    signature=st.binary(min_size=0, max_size=600),
    payload=random_payload(),
    variant=st.sampled_from(VARIANTS),
)
def test_forged_signatures_never_reveal_claims(
    clients: dict[str, Client], signature: bytes, payload: dict[str, Any], variant: str
) -> None:
    header = segment(ISSUER.header())
    token = f"{header}.{segment(payload)}.{b64(signature)}"
    response = clients[variant].get("/me", headers=bearer(token))
    assert assert_rejected(response) == "token-invalid-signature"
    message = response.json()["detail"]["message"]
    for value in (payload.get("sub"), payload.get("iss"), payload.get("sid")):
        if isinstance(value, str) and len(value) >= 4:
            assert value not in message


@FUZZ
@given(
    leading=st.sampled_from(["", " ", "\t", " \t"]),
    scheme_case=st.lists(st.booleans(), min_size=6, max_size=6),
    gap=st.integers(1, 4),
    trailing=st.sampled_from(["", " ", "\t", "  "]),
    cookie=st.one_of(st.none(), st.text(alphabet=B64URL, max_size=20)),
)
def test_any_bearer_spelling_with_a_valid_token_is_accepted(
    clients: dict[str, Client],
    leading: str,
    scheme_case: list[bool],
    gap: int,
    trailing: str,
    cookie: str | None,
) -> None:
    spelled = "".join(c.upper() if up else c for c, up in zip("bearer", scheme_case, strict=True))
    value = f"{leading}{spelled}{' ' * gap}{fresh_token()}{trailing}"
    headers = {"Authorization": value}
    if cookie is not None:  # a bad cookie next to a good header changes nothing
        headers["Cookie"] = f"__session={cookie}"
    response = clients["default"].get("/me", headers=headers)
    assert assert_well_formed(response) == {"sub": "user_spelled"}


@pytest.mark.parametrize("cat", [[], {}, ["cl_B7d4PD111AAA"]], ids=["list", "dict", "nested"])
def test_unhashable_cat_is_a_type_mismatch(clients: dict[str, Client], cat: Any) -> None:
    token = ISSUER.token(headers={"cat": cat})
    response = clients["default"].get("/me", headers=bearer(token))
    assert assert_rejected(response) == "token-type-mismatch"


# -- the framework-free core ---------------------------------------------------------------


def verify_outcome(
    loop: asyncio.AbstractEventLoop, token: str, app_settings: ClerkSettings
) -> ClerkAuthError | None:
    """``None`` when the token verified; the ``ClerkAuthError`` otherwise. Anything else fails."""
    try:
        loop.run_until_complete(verify_token(token, app_settings))
    except ClerkAuthError as error:
        assert error.reason.value in REASONS
        assert error.status_code == status_for(error.reason)
        assert isinstance(error.message, str) and error.message
        return error
    return None


@FUZZ
@given(
    token=st.one_of(st.text(max_size=200), jwt_like, st.text(alphabet=B64URL + ".", max_size=400)),
    variant=st.sampled_from(VARIANTS),
)
def test_verify_token_on_random_strings_only_raises_clerk_errors(
    loop: asyncio.AbstractEventLoop, jwks_url: str, token: str, variant: str
) -> None:
    error = verify_outcome(loop, token, variant_settings(variant, jwks_url))
    assert error is not None
    assert error.status_code == 401


@FUZZ_HEAVY
@given(
    header=random_header(),
    payload=random_payload(),
    signed=st.booleans(),
    variant=st.sampled_from(VARIANTS),
)
def test_verify_token_on_random_tokens_only_raises_clerk_errors(
    loop: asyncio.AbstractEventLoop,
    jwks_url: str,
    header: dict[str, Any],
    payload: dict[str, Any],
    signed: bool,
    variant: str,
) -> None:
    if signed:
        token = sign_jwt(header, payload, KEY)
    else:
        token = f"{segment(header)}.{segment(payload)}.{b64(b'not a signature')}"
    error = verify_outcome(loop, token, variant_settings(variant, jwks_url))
    if error is None:
        assert signed and broken_rules(header, payload, variant, time.time()) == []
