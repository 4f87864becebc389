"""``ClerkClaims`` built from a verified token's payload without pydantic's model validation.

Every well-formed Clerk token gives claims whose fields already have the types the model
stores, so validating them again is wasted work on every cold verification.
:func:`read_payload` parses the payload's JSON text and checks those types in one pydantic-core
pass; :func:`claims_from_payload` then assembles the model directly, or answers ``None`` and
the caller validates with pydantic. Tests compare both ways on tables and generated payloads.
The organization fields are remembered per distinct ``o`` and ``fea``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic_core import SchemaValidator, core_schema

from .claims import ClerkClaims
from .jws import may_nest_deeper
from .organization import normalize_organization
from .readonly import ReadOnlyDict, ReadOnlyList, read_only
from .reverification import parse_fva

__all__ = [
    "PAYLOAD_FIELDS_SCHEMA",
    "UNTYPED_FIELDS",
    "ValidatedPayload",
    "claims_from_payload",
    "read_payload",
]


# The fields that pydantic stores exactly as given when the value has this exact type (or is
# None: all but sub, iat and exp are optional). ``fva``, ``act`` and ``org_permissions`` are
# handled by name in claims_from_payload; tests keep this table in step with the model.
_PLAIN_FIELDS: dict[str, type] = (  # never changed
    {
        "sub": str,
        "iat": int,
        "exp": int,
        "iss": str,
        "nbf": int,
        "sid": str,
        "azp": str,
        "sts": str,
        "v": int,
        "jti": str,
        "pla": str,
        "fea": str,
        "email": str,
        "org_id": str,
        "org_slug": str,
        "org_role": str,
    }
)
_OTHER_FIELDS = frozenset({"fva", "act", "org_permissions"})
# The fields in declaration order: the order pydantic keeps them in (repr shows it).
_FIELD_ORDER = tuple(ClerkClaims.model_fields)
# The names the normalisation always sets, whether the token has them or not.
_ALWAYS_SET = frozenset({"org_id", "org_slug", "org_role", "org_permissions", "fva", "pla", "fea"})


def _claims(fields: dict[str, Any], extra: ReadOnlyDict, fields_set: set[str]) -> ClerkClaims:
    """The model object, its slots set as pydantic's own construction sets them."""
    claims = _new_claims(ClerkClaims)
    _set_dict(claims, fields)
    _set_extra(claims, extra)
    _set_fields_set(claims, fields_set)
    _set_private(claims, None)
    return claims


def _slot_setter(name: str) -> Callable[[Any, Any], None]:
    """What ``object.__setattr__(model, name, value)`` calls, for calling it directly."""
    descriptor: Any = BaseModel.__dict__[name]
    return descriptor.__set__  # type: ignore[no-any-return]


_new_claims = ClerkClaims.__new__
_set_dict = _slot_setter("__dict__")
_set_extra = _slot_setter("__pydantic_extra__")
_set_fields_set = _slot_setter("__pydantic_fields_set__")
_set_private = _slot_setter("__pydantic_private__")


# org_id, org_slug, org_role, org_permissions, the read-only ``o`` when remembered, and the
# read-only extras of a token whose only other claim is that ``o`` (most tokens of a member).
_Organization = tuple[Any, Any, Any, ReadOnlyList, "ReadOnlyDict | None", "ReadOnlyDict | None"]
_NO_ORGANIZATION: _Organization = (None, None, None, ReadOnlyList(), None, None)
# The organization fields of each distinct ``o`` (its items, in order) and ``fea``, with the
# read-only copy of ``o``: the tokens of one member of one organization share them. Only an
# ``o`` of strings is remembered (a string never equals another type, so equal keys mean
# equal claims). Bounded: emptied when full.
_organizations: dict[tuple[Any, ...], _Organization] = {}
_ORGANIZATIONS_MAX = 1024


def _organization_from(
    o: Any, fea: Any, version: Any, claims: Callable[[], Mapping[str, Any]]
) -> _Organization | None:
    """``org_id``, ``org_slug``, ``org_role``, ``org_permissions`` by Clerk's rules from a
    token's ``o``, ``fea`` and ``v``, with the read-only copy of ``o`` when remembered;
    ``None`` when a permission is not a plain string (pydantic decides). ``claims()`` gives the
    token's claims, asked for only when the rules need more (a v1 token's flat claims)."""
    if type(o) is dict:
        key = (tuple(o.items()), fea)
        try:
            found = _organizations.get(key)
        except TypeError:  # a list or an object in o: not remembered
            found = None
        if found is None:
            found = _organization_of(normalize_organization(claims()))
            strings = all(type(v) is str for v in o.values())
            if found is not None and strings and (fea is None or type(fea) is str):
                read_only_o = ReadOnlyDict(o)
                found = (*found[:4], read_only_o, ReadOnlyDict({"o": read_only_o}))
                if len(_organizations) >= _ORGANIZATIONS_MAX:
                    _organizations.clear()
                _organizations[key] = found
        return found
    if o is None and type(version) is int and version >= 2:
        return _NO_ORGANIZATION  # a v2 token without an active organization
    return _organization_of(normalize_organization(claims()))


def _organization_of(values: dict[str, Any]) -> _Organization | None:
    permissions = values["org_permissions"]
    if type(permissions) is not list or any(type(p) is not str for p in permissions):
        return None
    org_id, org_slug, org_role = values["org_id"], values["org_slug"], values["org_role"]
    for value in (org_id, org_slug, org_role):
        if value is not None and type(value) is not str:
            return None
    return org_id, org_slug, org_role, ReadOnlyList(permissions), None, None


# -- straight from the payload's JSON text --------------------------------------------------


_READ_AS_GIVEN = ("org_id", "org_slug", "org_role")  # any JSON value, read by Clerk's rules

UNTYPED_FIELDS = tuple(
    name for name in _FIELD_ORDER if name not in _PLAIN_FIELDS or name in _READ_AS_GIVEN
)
"""The fields :func:`read_payload` takes as any JSON value (they may hold containers)."""


def _plain_field(name: str) -> Any:
    kind = _PLAIN_FIELDS.get(name)
    if name in ("sub", "iat", "exp"):
        return core_schema.model_field(
            core_schema.str_schema(strict=True)
            if kind is str
            else core_schema.int_schema(strict=True)
        )
    inner: core_schema.CoreSchema
    if name in UNTYPED_FIELDS:
        inner = core_schema.any_schema()  # read by Clerk's rules below, not stored as given
    elif name == "nbf":
        inner = core_schema.int_schema(strict=True)  # null is no NumericDate: pydantic decides
    else:
        scalar = core_schema.str_schema if kind is str else core_schema.int_schema
        inner = core_schema.nullable_schema(scalar(strict=True))
    return core_schema.model_field(core_schema.with_default_schema(inner, default=None))


PAYLOAD_FIELDS_SCHEMA = core_schema.model_fields_schema(
    {name: _plain_field(name) for name in _FIELD_ORDER}, extra_behavior="allow"
)
"""The fields of ClerkClaims, in declaration order, with exactly the types the model stores
as given (strict: no conversion); every other claim is kept as it is, in payload order."""
_PAYLOAD_FIELDS = SchemaValidator(PAYLOAD_FIELDS_SCHEMA)

ValidatedPayload = tuple[dict[str, Any], dict[str, Any], set[str]]
"""The fields (every one, in declaration order), the other claims, and the names given."""


def read_payload(raw: bytes) -> ValidatedPayload | None:
    """JSON text of a token payload parsed and type-checked in one pass by pydantic-core, when
    every field has the type the model stores; ``None`` otherwise (not JSON, a wrong type, a
    fraction, a ``null`` nbf, or deep nesting), and the caller decodes it as a dict."""
    if may_nest_deeper(raw):
        return None
    try:
        return _PAYLOAD_FIELDS.validate_json(raw)  # type: ignore[no-any-return]
    except ValueError:  # pydantic_core.ValidationError is a ValueError
        return None


def claims_from_payload(read: ValidatedPayload) -> ClerkClaims | None:
    """``ClerkClaims`` for a payload :func:`read_payload` accepted, equal to what pydantic's
    validation builds (the same fields, read-only extras and fields set); ``None`` when some
    claim needs pydantic (an ``act`` claim, a permission that is not a plain string)."""
    fields, others, given = read
    if fields["act"] is not None:
        return None  # pydantic builds the Actor
    fva = fields["fva"]
    if fva is not None:
        fields["fva"] = _fva(fva)
    organization = _organization_from(
        others.get("o"), fields["fea"], fields["v"], lambda: {**fields, **others}
    )
    if organization is None:  # pragma: no cover - JSON gives plain strings only
        return None
    org_id, org_slug, org_role, permissions, read_only_o, only_o = organization
    fields["org_id"] = org_id
    fields["org_slug"] = org_slug
    fields["org_role"] = org_role
    fields["org_permissions"] = permissions
    if only_o is not None and len(others) == 1:  # o itself, the remembered one: shared
        return _claims(fields, only_o, _fields_set(given))
    for name, value in others.items():
        if isinstance(value, (list, dict)):
            others[name] = read_only_o if name == "o" and read_only_o else read_only(value)
    return _claims(fields, ReadOnlyDict(others), _fields_set(given))


def _fva(value: Any) -> tuple[int, int] | None:
    if type(value) is list and len(value) == 2:  # parse_fva's rules, without its calls
        first, second = value
        if type(first) is int and type(second) is int and first >= -1 and second >= -1:
            return first, second
    return parse_fva(value)


# The names a token carried with those the normalisation always sets, one set object per
# distinct set (each set costs about 1 KiB per cached token); bounded, newest first.
_fields_sets: list[tuple[set[str], set[str]]] = []  # (the names given, their shared set)
_FIELDS_SETS_MAX = 16


def _fields_set(given: set[str]) -> set[str]:
    # An instance's tokens come in a few shapes: comparing with each known one costs less
    # than hashing a frozenset of the names.
    for known, shared in _fields_sets:
        if known == given:
            return shared
    shared = given | _ALWAYS_SET
    _fields_sets.insert(0, (given, shared))
    del _fields_sets[_FIELDS_SETS_MAX:]
    return shared
