"""The active organization of a token and the ``fea``/``pla`` claims, by Clerk's rules.

Owns: role and permission normalisation (``admin`` == ``org:admin``,
``org:<feature>:<permission>``), the scoped names of ``fea``/``pla`` (:class:`ScopedName`,
what a caller asks for and whether a claim holds it), the decoding of a v2 token's ``o.fpm``
bitmasks over ``o.per`` and ``fea``, and :func:`normalize_organization`, which reads v1 flat
``org_*`` claims and v2 ``o`` objects alike. Pure: no I/O, and anything that cannot be read
grants nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = [
    "ScopedName",
    "decode_org_permissions",
    "has_scoped_name",
    "normalize_org_permission",
    "normalize_org_role",
    "normalize_organization",
    "parse_requested_name",
    "parse_scoped_claim",
]

_ORG_PREFIXES = re.compile(r"\A(?:org:)*")


def _checked_key(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}")
    if not value or value != "".join(value.split()):
        raise ValueError(f"{what} {value!r} must be non-empty and contain no whitespace")
    return value


def normalize_org_role(role: object) -> str:
    """``role`` with exactly one ``org:`` prefix, as Clerk compares roles (``admin`` ==
    ``org:admin``). Raises ``TypeError``/``ValueError`` for a non-string or empty role."""
    normalized = _ORG_PREFIXES.sub("org:", _checked_key(role, "org role"), count=1)
    if normalized == "org:":
        raise ValueError(f"org role {role!r} names no role")
    return normalized


def normalize_org_permission(permission: object) -> str:
    """``permission`` as ``org:<feature>:<permission>`` (the ``org:`` prefix is added when
    missing, as Clerk's ``has()`` does). Raises ``TypeError``/``ValueError`` otherwise."""
    normalized = _ORG_PREFIXES.sub("org:", _checked_key(permission, "permission"), count=1)
    parts = normalized.split(":", 2)
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise ValueError(
            f"permission {permission!r} is not of the form 'org:<feature>:<permission>'"
        )
    return normalized


class ScopedName(NamedTuple):
    """One entry of a ``fea`` or ``pla`` claim: its name and whom it belongs to."""

    name: str
    org: bool
    user: bool


# Scopes as they appear in claims. Clerk writes ``o``, ``u`` and ``ou``/``uo``; the long forms
# are accepted too. An entry with another scope belongs to neither and so grants nothing.
_CLAIM_SCOPES: Mapping[str, tuple[bool, bool]] = MappingProxyType(
    {
        "o": (True, False),
        "org": (True, False),
        "organization": (True, False),
        "u": (False, True),
        "user": (False, True),
        "ou": (True, True),
        "uo": (True, True),
    }
)
# Scopes a caller may ask for, as in Clerk's has(): ``o:x``/``org:x`` or ``u:x``/``user:x``.
_REQUEST_SCOPES: Mapping[str, tuple[bool, bool]] = MappingProxyType(
    {scope: _CLAIM_SCOPES[scope] for scope in ("o", "org", "organization", "u", "user")}
)


def parse_scoped_claim(claim: object) -> list[ScopedName] | None:
    """The entries of a ``fea``/``pla`` claim (``"o:dashboard,u:export"``).

    ``None`` when the claim is malformed (not a string, or an entry without ``scope:name``):
    Clerk's SDK refuses such a claim as a whole, so every check against it fails.
    """
    if not isinstance(claim, str):
        return None
    if not claim.strip():
        return []
    entries: list[ScopedName] = []
    for part in claim.split(","):
        scope, colon, name = part.strip().partition(":")
        if not colon or not scope or not name:
            return None
        org, user = _CLAIM_SCOPES.get(scope, (False, False))
        entries.append(ScopedName(name, org, user))
    return entries


def parse_requested_name(requested: object, what: str = "feature") -> ScopedName:
    """What a caller asks for: ``"x"`` (any scope), ``"o:x"``/``"org:x"`` (organization only)
    or ``"u:x"``/``"user:x"`` (user only). Raises ``TypeError``/``ValueError`` otherwise."""
    text = _checked_key(requested, what)
    scope, colon, name = text.partition(":")
    if not colon:
        return ScopedName(text, True, True)
    if scope not in _REQUEST_SCOPES:
        raise ValueError(
            f"{what} {text!r} has an unknown scope {scope!r}; use o:, org:, u:, user: or none"
        )
    if not name:
        raise ValueError(f"{what} {text!r} names nothing after its scope")
    return ScopedName(name, *_REQUEST_SCOPES[scope])


def has_scoped_name(claim: object, requested: ScopedName) -> bool:
    """Whether the ``fea``/``pla`` claim holds ``requested`` in a scope it accepts."""
    return any(
        entry.name == requested.name
        and ((requested.org and entry.org) or (requested.user and entry.user))
        for entry in parse_scoped_claim(claim) or []
    )


_DIGITS = re.compile(r"[0-9]+")


def _parse_mask(part: str) -> int | None:
    text = part.strip()
    if not _DIGITS.fullmatch(text):
        return None
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        return None


def _split_list(value: object) -> list[str]:
    if not isinstance(value, str) or not value.strip():
        return []
    return [item.strip() for item in value.split(",")]


# The ``fea`` scopes whose entries are organization features and so own an ``o.fpm`` mask.
_FPM_SCOPES = frozenset({"o", "ou", "uo"})


def _org_features(fea: object) -> list[str]:
    """The names of the organization features of ``fea``, in order; ``[]`` when the claim is
    malformed (as :func:`parse_scoped_claim` refuses it)."""
    if not isinstance(fea, str):
        return []
    features = []
    for part in fea.split(","):
        scope, colon, name = part.strip().partition(":")
        if not colon or not scope or not name:
            return []
        if scope in _FPM_SCOPES:
            features.append(name)
    return features


def decode_org_permissions(fea: object, per: object, fpm: object) -> list[str]:
    """The ``org:<feature>:<permission>`` keys that a v2 token's ``o.fpm`` grants.

    As Clerk's JS SDK reads it: the organization features of ``fea`` are its entries of scope
    ``o``, ``ou`` or ``uo``, in order; the i-th integer of ``fpm`` belongs to the i-th of them,
    and its bit j (least significant bit = 0) grants the j-th name of ``per``. A feature
    without an integer gets nothing, extra integers are ignored, and an integer that is not
    all digits grants nothing but keeps its place. Integers may be of any size.
    """
    if type(fea) is str and type(per) is str and type(fpm) is str:
        return list(_decoded_permissions(fea, per, fpm))
    return _decode_permissions(fea, per, fpm)


@lru_cache(maxsize=256)
def _decoded_permissions(fea: str, per: str, fpm: str) -> tuple[str, ...]:
    # Remembered: the tokens of one role in one plan all carry the same fea, per and fpm.
    return tuple(_decode_permissions(fea, per, fpm))


def _decode_permissions(fea: object, per: object, fpm: object) -> list[str]:
    features = _org_features(fea)
    names = _split_list(per)
    masks = [_parse_mask(part) for part in _split_list(fpm)]
    granted: dict[str, None] = {}
    # zip: a feature without a mask, and a mask without a feature, grant nothing
    for feature, mask in zip(features, masks, strict=False):
        if not mask:
            continue
        for bit, name in enumerate(names):
            if name and mask >> bit & 1:
                granted[f"org:{feature}:{name}"] = None
    return list(granted)


# -- organization claims of either token shape ----------------------------------------------


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _token_role(value: object) -> str | None:
    if isinstance(value, str):
        return _token_role_text(value)
    return None  # normalize_org_role refuses anything but a string


@lru_cache(maxsize=256)
def _token_role_text(value: str) -> str | None:
    # Remembered: an instance has a handful of roles, each on many tokens.
    try:
        return normalize_org_role(value)
    except (TypeError, ValueError):
        return None


def _is_v2_or_later(version: object) -> bool:
    return isinstance(version, int) and not isinstance(version, bool) and version >= 2


def normalize_organization(claims: Mapping[str, Any], *, token: bool = True) -> dict[str, Any]:
    """``org_id``, ``org_slug``, ``org_role`` and ``org_permissions`` from either token shape.

    An ``o`` object wins when present. Otherwise a v2 token (``v`` is 2; later versions
    alike) has no active organization: its flat ``org_*`` claims grant nothing. A v1 token
    (no ``v``) carries flat ``org_*`` claims. ``token=False`` (claims built in code) reads
    flat claims whatever ``v`` says.
    """
    o = claims.get("o")
    if type(o) is dict or isinstance(o, Mapping):
        return {
            "org_id": _string(o.get("id")),
            "org_slug": _string(o.get("slg")),
            "org_role": _token_role(o.get("rol")),
            "org_permissions": decode_org_permissions(
                claims.get("fea"), o.get("per"), o.get("fpm")
            ),
        }
    if token and _is_v2_or_later(claims.get("v")):
        source = {"id": None, "slug": None, "role": None}
        permissions = []
    else:
        source = {
            "id": claims.get("org_id"),
            "slug": claims.get("org_slug"),
            "role": claims.get("org_role"),
        }
        listed = claims.get("org_permissions")
        permissions = [p for p in listed if isinstance(p, str)] if isinstance(listed, list) else []
    return {
        "org_id": _string(source["id"]),
        "org_slug": _string(source["slug"]),
        "org_role": _token_role(source["role"]),
        "org_permissions": permissions,
    }
