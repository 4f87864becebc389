"""Organization claims for tests: an active organization written the way Clerk writes it.

Owns :func:`encode_organization` (the v2 ``o`` object with ``fea``, or the flat v1 ``org_*``
claims) and the parsing of ``org:<feature>:<permission>`` names it needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["encode_organization"]

# Feature scopes that carry organization permissions (Clerk: o, org, organization, ou, uo).
_ORG_SCOPES = frozenset({"o", "org", "organization", "ou", "uo"})


def _split_permission(permission: str) -> tuple[str, str]:
    parts = permission.removeprefix("org:").split(":")
    if len(parts) != 2 or not all(parts):
        raise ValueError(
            f"org permission {permission!r} is not of the form 'org:<feature>:<permission>'"
        )
    return parts[0], parts[1]


def _scope_of(entry: str) -> str:
    scope, _, _ = entry.partition(":")
    return scope


def encode_organization(
    *,
    org_id: str,
    org_slug: str | None = None,
    org_role: str | None = None,
    org_permissions: Iterable[str] = (),
    fea: str | None = None,
    version: int = 2,
) -> dict[str, Any]:
    """The claims that carry an active organization, as Clerk writes them.

    ``version=2`` gives ``o = {id, slg, rol, per, fpm}`` plus the features in ``fea``:
    ``rol`` has no ``org:`` prefix, ``per`` lists the permission names, and the i-th integer of
    ``fpm`` is a bitmask over ``per`` for the i-th organization feature. Organization features
    come first in ``fea`` and every other feature gets a ``0`` mask, so the token reads the same
    whether a decoder pairs ``fpm`` with all features or only with the organization's (Clerk's
    JS SDK does the latter). ``version=1`` gives the flat ``org_*`` claims.
    """
    permissions = list(dict.fromkeys(org_permissions))
    role = None if org_role is None else f"org:{org_role.removeprefix('org:')}"
    if version == 1:
        flat: dict[str, Any] = {"org_id": org_id, "org_role": role}
        if org_slug is not None:
            flat["org_slug"] = org_slug
        flat["org_permissions"] = [f"org:{p.removeprefix('org:')}" for p in permissions]
        return flat
    o: dict[str, Any] = {"id": org_id}
    if org_slug is not None:
        o["slg"] = org_slug
    if role is not None:
        o["rol"] = role.removeprefix("org:")
    claims: dict[str, Any] = {"o": o}
    if not permissions:
        if fea is not None:
            claims["fea"] = fea
        return claims
    pairs = [_split_permission(p) for p in permissions]
    entries = [e.strip() for e in (fea or "").split(",") if e.strip()]
    org_entries = [e for e in entries if _scope_of(e) in _ORG_SCOPES]
    other_entries = [e for e in entries if _scope_of(e) not in _ORG_SCOPES]
    org_features = [e.partition(":")[2] for e in org_entries]
    for feature, _ in pairs:
        if feature not in org_features:
            org_features.append(feature)
            org_entries.append(f"o:{feature}")
    names = list(dict.fromkeys(name for _, name in pairs))
    masks = [
        sum(1 << names.index(name) for f, name in pairs if f == feature) for feature in org_features
    ]
    o["per"] = ",".join(names)
    o["fpm"] = ",".join(str(mask) for mask in [*masks, *(0 for _ in other_entries)])
    claims["fea"] = ",".join(org_entries + other_entries)
    return claims
