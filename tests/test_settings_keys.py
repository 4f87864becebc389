"""Settings validation a new user meets first: key formats, swapped keys, pasted URLs.

Clerk's rules (clerk-reference): a publishable key is ``pk_test_`` / ``pk_live_`` + standard
base64 (padding optional) of ``<host>$``, one ``$`` at the end, a dot in the host; the JWKS
public key may be pasted as a PEM or as its bare base64 body.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from pydantic import ValidationError

from clerk_deps import ClerkSettings, verify_token
from clerk_deps.settings import issuer_from_publishable_key
from clerk_deps.testing import TestIssuer

ISSUER = TestIssuer()


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("CLERK_PUBLISHABLE_KEY", "CLERK_SECRET_KEY", "CLERK_JWT_KEY", "CLERK_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def pk(decoded: bytes, prefix: str = "pk_test_", *, strip: bool = False) -> str:
    encoded = base64.b64encode(decoded).decode()
    return prefix + (encoded.rstrip("=") if strip else encoded)


def error_text(**values: str) -> str:
    with pytest.raises(ValidationError) as error:
        ClerkSettings(**values)  # type: ignore[arg-type]
    return " | ".join(e["msg"] for e in error.value.errors())


# -- jwt_key: PEM or the bare base64 body --------------------------------------------------


def pem_body(pem: str) -> str:
    return "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))


@pytest.mark.parametrize(
    "shape",
    ["one line", "64-column lines", "escaped newlines", "spaces and quotes", "crlf"],
)
def test_jwt_key_accepts_the_bare_base64_body(shape: str) -> None:
    body = pem_body(ISSUER.public_pem)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    value = {
        "one line": body,
        "64-column lines": "\n".join(lines) + "\n",
        "escaped newlines": "\\n".join(lines),
        "spaces and quotes": '"  ' + "  ".join(lines) + '  "',
        "crlf": "\r\n".join(lines),
    }[shape]
    settings = ClerkSettings(issuer=ISSUER.issuer, jwt_key=value)
    assert settings.key_source_name == "jwt_key"
    claims = asyncio.run(verify_token(ISSUER.token("user_bare"), settings))
    assert claims.sub == "user_bare"


@pytest.mark.parametrize(
    "value", ["bm90IGEga2V5", "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A", "a b c", "not-a-key!"]
)
def test_bare_base64_that_is_no_key_is_a_settings_error(value: str) -> None:
    text = error_text(jwt_key=value)
    assert "CLERK_JWT_KEY" in text and "base64 body alone" in text
    assert value not in text


# -- publishable_key: Clerk's rule ---------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "issuer"),
    [
        (pk(b"clean-fox-12.clerk.accounts.dev$"), "https://clean-fox-12.clerk.accounts.dev"),
        (
            pk(b"clean-fox-12.clerk.accounts.dev$", strip=True),
            "https://clean-fox-12.clerk.accounts.dev",
        ),
        (pk(b"clerk.example.com$", "pk_live_"), "https://clerk.example.com"),
        (pk(b"clerk.example.com$", "pk_live_", strip=True), "https://clerk.example.com"),
    ],
)
def test_valid_publishable_keys(key: str, issuer: str) -> None:
    assert issuer_from_publishable_key(key) == issuer
    assert ClerkSettings(publishable_key=key).issuer == issuer


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        (pk(b"localhost$"), "has no dot"),
        (pk(b"clerk.example.com"), "one '$', at the end"),
        (pk(b"clerk.example.com$$"), "one '$', at the end"),
        (pk(b"clerk$example.com$"), "one '$', at the end"),
        (pk(b"clerk.example.com$x"), "one '$', at the end"),
        (pk(b"clerk.example.com/x$"), "not a host name"),
        (pk(b"127.0.0.1:8000$"), "not a host name"),
        (pk(b"\xff\xfe.example$"), "not a host name"),
        ("pk_test_" + base64.urlsafe_b64encode(b"a.example.com?>?$").decode(), "not valid base64"),
        ("pk_test_!!!", "not valid base64"),
        ("pk_test_" + base64.b64encode(b"clerk.example.com$").decode() + "=", "not valid base64"),
        ("pk_test_", "nothing follows pk_test_"),
    ],
)
def test_malformed_pk_test_keys_say_what_is_wrong(key: str, fragment: str) -> None:
    text = error_text(publishable_key=key)
    assert text.startswith("CLERK_PUBLISHABLE_KEY: starts with pk_test_ but ")
    assert fragment in text
    assert "must start with" not in text  # it has the prefix: do not say it lacks it
    assert key.removeprefix("pk_test_") not in text or key == "pk_test_"


@pytest.mark.parametrize("key", ["pk_prod_abc", "pk_abc", "pub_test_abc", "PK_TEST_abc", "abc"])
def test_keys_without_the_prefix_are_told_the_prefix(key: str) -> None:
    text = error_text(publishable_key=key)
    assert "must start with pk_test_ or pk_live_" in text


@pytest.mark.parametrize("secret", ["sk_test_abcdef", "sk_live_abcdef"])
def test_secret_key_in_publishable_key_is_named_as_swapped(secret: str) -> None:
    text = error_text(publishable_key=secret)
    assert text.startswith("CLERK_PUBLISHABLE_KEY: holds a secret key")
    assert "swapped" in text and "CLERK_SECRET_KEY" in text
    assert secret not in text


def test_publishable_key_in_secret_key_is_named_as_swapped(monkeypatch: pytest.MonkeyPatch) -> None:
    key = pk(b"clerk.example.com$")
    monkeypatch.setenv("CLERK_SECRET_KEY", key)
    monkeypatch.setenv("CLERK_ISSUER", "https://clerk.example.com")
    with pytest.raises(ValidationError) as error:
        ClerkSettings()
    text = str(error.value)
    assert "CLERK_SECRET_KEY: holds a publishable key" in text and "swapped" in text
    assert key not in text


def test_both_keys_swapped_name_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_SECRET_KEY", pk(b"clerk.example.com$"))
    monkeypatch.setenv("CLERK_PUBLISHABLE_KEY", "sk_test_abcdef")
    with pytest.raises(ValidationError) as error:
        ClerkSettings()
    text = str(error.value)
    assert "CLERK_SECRET_KEY: holds a publishable key" in text
    assert "CLERK_PUBLISHABLE_KEY: holds a secret key" in text


def test_an_ordinary_secret_key_is_accepted() -> None:
    settings = ClerkSettings(secret_key="sk_test_abc")
    assert settings.key_source_name == "secret_key"


# -- issuer: what can never equal a Clerk iss ----------------------------------------------


@pytest.mark.parametrize(
    "issuer",
    [
        "https://x.clerk.accounts.dev/.well-known/jwks.json",
        "https://x.clerk.accounts.dev/.well-known/jwks.json/",
        "https://x.clerk.accounts.dev/.well-known/openid-configuration",
        "https://api.clerk.com/v1/jwks",
    ],
)
def test_key_set_url_as_issuer_is_a_settings_error(issuer: str) -> None:
    text = error_text(issuer=issuer)
    assert text.startswith("CLERK_ISSUER: is a key set URL; drop the path")


@pytest.mark.parametrize("issuer", ["https://x.clerk.accounts.dev?a=1", "https://x.example#frag"])
def test_issuer_with_query_or_fragment_is_a_settings_error(issuer: str) -> None:
    assert "without '?' or '#' parts" in error_text(issuer=issuer)
