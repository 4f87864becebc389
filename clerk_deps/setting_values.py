"""The values behind ``ClerkSettings``: checks, parsers and the error they raise.

Owns what a single setting's text must look like, independent of the settings model: the
publishable key's encoded Frontend API host (:func:`issuer_from_publishable_key`), the PEM or
bare base64 public key (:func:`public_key_pem`, :func:`load_rsa_public_key`), URL and issuer
checks, comma or JSON list parsing, the immutable :class:`FrozenList` of list fields, and the
one-paragraph summary of an invalid configuration (:func:`describe_validation_error`).
Every check raises a settings error that names the ``CLERK_`` variable, never its value.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, NoReturn, SupportsIndex
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

__all__ = [
    "FrozenList",
    "checked_issuer_path",
    "checked_url",
    "describe_validation_error",
    "issuer_from_publishable_key",
    "load_rsa_public_key",
    "public_key_pem",
    "refuse_publishable_key",
    "setting_error",
    "split_list",
]

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_SECRET_KEY_PREFIXES = ("sk_test_", "sk_live_")
_NOT_IN_HOST = frozenset("/:@ ?#\\\ufffd")
_BASE64_BODY = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_PUBLISHABLE_KEY_PREFIXES = ("pk_test_", "pk_live_")
_SWAPPED_SECRET = (
    "holds a secret key (sk_...): CLERK_PUBLISHABLE_KEY and CLERK_SECRET_KEY look swapped; "
    "put the pk_test_/pk_live_ key here and the sk_ key in CLERK_SECRET_KEY"
)
_SWAPPED_PUBLISHABLE = (
    "holds a publishable key (pk_...): CLERK_SECRET_KEY and CLERK_PUBLISHABLE_KEY look "
    "swapped; put the sk_test_/sk_live_ key here and the pk_ key in CLERK_PUBLISHABLE_KEY"
)


class FrozenList(list[str]):
    """A list that cannot change: list fields of the frozen :class:`ClerkSettings`.

    It compares equal to a plain list with the same items, and it is hashable, so
    settings objects are hashable too.
    """

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("ClerkSettings are immutable: build a new ClerkSettings(...) instead")

    append = extend = insert = remove = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def pop(self, index: SupportsIndex = -1) -> NoReturn:
        self._refuse()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))

    def __copy__(self) -> FrozenList:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenList:
        return self


def setting_error(variable: str, message: str) -> PydanticCustomError:
    """The validation error of one setting: ``"<variable>: <message>"``, no input value."""
    return PydanticCustomError(
        "clerk_setting",
        "{variable}: {message}",
        {
            "variable": variable,
            "message": message,
        },
    )


def refuse_publishable_key(secret_key: str) -> None:
    """Raise when ``CLERK_SECRET_KEY`` holds a publishable key (the two look swapped)."""
    if secret_key.strip().startswith(_PUBLISHABLE_KEY_PREFIXES):
        raise setting_error("CLERK_SECRET_KEY", _SWAPPED_PUBLISHABLE)


def checked_url(url: str, variable: str) -> str:
    """``url`` if it is absolute https (or plain http to a local host), else an error."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS:
        return url
    if parts.scheme == "http":
        raise setting_error(
            variable,
            "must use https:// (plain http is only allowed for localhost, 127.0.0.1 and [::1])",
        )
    raise setting_error(
        variable, "must be an absolute https:// URL, e.g. https://your-app.clerk.accounts.dev"
    )


def checked_issuer_path(url: str) -> str:
    """Refuse what can never equal a Clerk ``iss``: a query, a fragment, a key set URL."""
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise setting_error(
            "CLERK_ISSUER",
            "must be the Frontend API URL alone (https://<host>), without '?' or '#' parts",
        )
    if _is_key_set_path(parts.path):
        raise setting_error(
            "CLERK_ISSUER",
            "is a key set URL; drop the path and set the Frontend API URL alone "
            "(https://<host>): the key set URL is derived from it (or set CLERK_JWKS_URL)",
        )
    return url


def _is_key_set_path(path: str) -> bool:
    path = path.rstrip("/").lower()
    return "/.well-known/" in f"{path}/" or path.endswith(("jwks.json", "/jwks"))


def split_list(value: str, variable: str) -> list[Any]:
    """The items of a comma-separated or JSON-list value, stripped, blanks dropped."""
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            raise setting_error(variable, "looks like a JSON list but does not parse") from None
        if not isinstance(parsed, list) or not all(isinstance(i, str) for i in parsed):
            raise setting_error(variable, "must be a JSON list of strings")
        return [i.strip() for i in parsed if i.strip()]
    return [part.strip() for part in text.split(",") if part.strip()]


def issuer_from_publishable_key(publishable_key: str) -> str:
    """The Frontend API URL encoded in a ``pk_test_...`` / ``pk_live_...`` key.

    Clerk's rule: ``pk_test_`` or ``pk_live_``, then standard base64 (padding may be stripped)
    of ``<frontend-api-host>$``, with exactly one ``$``, at the end, and a dot in the host.
    Anything else raises a settings error that says what is wrong, never the key itself.
    """
    if publishable_key.startswith(_SECRET_KEY_PREFIXES):
        raise setting_error("CLERK_PUBLISHABLE_KEY", _SWAPPED_SECRET)
    prefix = next((p for p in ("pk_test_", "pk_live_") if publishable_key.startswith(p)), None)
    if prefix is None:
        raise setting_error(
            "CLERK_PUBLISHABLE_KEY",
            "is not a Clerk publishable key: it must start with pk_test_ or pk_live_ "
            "(Clerk dashboard > API keys)",
        )
    host = _decode_publishable_host(publishable_key.removeprefix(prefix), prefix)
    return f"https://{host}"


def _decode_publishable_host(encoded: str, prefix: str) -> str:
    def bad(what: str) -> PydanticCustomError:
        return setting_error(
            "CLERK_PUBLISHABLE_KEY",
            f"starts with {prefix} but {what}; copy the whole key again from the Clerk "
            "dashboard (API keys)",
        )

    if not encoded:
        raise bad(f"nothing follows {prefix}")
    unpadded = encoded.rstrip("=")
    padded = unpadded + "=" * (-len(unpadded) % 4)
    try:
        if encoded not in (unpadded, padded):
            raise binascii.Error("wrong padding")
        raw = base64.b64decode(padded, validate=True)
    except binascii.Error:
        raise bad(f"the part after {prefix} is not valid base64 (cut off or altered?)") from None
    text = raw.decode("ascii", errors="replace")
    if not text.endswith("$") or text.count("$") != 1:
        raise bad("it does not decode to '<frontend-api-host>$' (one '$', at the end)")
    host = text[:-1]
    if (
        not host
        or not host.isascii()
        or not host.isprintable()
        or any(c in host for c in _NOT_IN_HOST)
    ):
        raise bad("the host it decodes to is not a host name")
    if "." not in host:
        raise bad("the host it decodes to has no dot, so it is not a Clerk Frontend API host")
    return host


def public_key_pem(value: str) -> str:
    """``CLERK_JWT_KEY`` as PEM text.

    Accepts a PEM with real or ``\\n``-escaped newlines (as dotenv files hold it), optionally
    in double quotes, or the bare base64 SubjectPublicKeyInfo body without the BEGIN/END
    lines, with or without whitespace and newlines inside.
    """
    text = value.strip().strip('"').replace("\\n", "\n").strip()
    if "-----BEGIN" in text or text.startswith(_SECRET_KEY_PREFIXES):
        return text
    body = "".join(text.split())
    if not _BASE64_BODY.fullmatch(body):
        return text  # not a key in either form: load_rsa_public_key says so
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN PUBLIC KEY-----\n{lines}\n-----END PUBLIC KEY-----\n"


def load_rsa_public_key(pem: str) -> RSAPublicKey:
    """Parse ``pem`` as an RSA public key or raise a settings error naming ``CLERK_JWT_KEY``."""
    if pem.startswith(("sk_test_", "sk_live_")):
        raise setting_error(
            "CLERK_JWT_KEY",
            "holds a secret key (sk_...); put it in CLERK_SECRET_KEY and the "
            "PEM public key ('-----BEGIN PUBLIC KEY-----...') from the Clerk dashboard here",
        )
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise setting_error(
            "CLERK_JWT_KEY",
            "is not a PEM public key; copy 'JWKS Public Key' from the Clerk dashboard "
            "(-----BEGIN PUBLIC KEY----- ..., with real or \\n-escaped newlines, or the "
            "base64 body alone)",
        ) from None
    if not isinstance(key, RSAPublicKey):
        raise setting_error("CLERK_JWT_KEY", "must be an RSA public key (Clerk signs with RS256)")
    return key


def describe_validation_error(error: ValidationError) -> str:
    """A one-paragraph summary naming the variables to fix, without any input value."""
    parts = []
    for item in error.errors(include_input=False, include_url=False):
        message = item["msg"]
        if item["type"] != "clerk_setting":
            loc = ".".join(str(p) for p in item["loc"]).upper()
            # From the environment the location is the variable itself; from keywords, the field.
            variable = (loc if loc.startswith("CLERK_") else f"CLERK_{loc}") if loc else "settings"
            message = f"{variable}: {message}"
        parts.append(message)
    return "; ".join(parts)
