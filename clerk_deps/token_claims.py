"""``ClerkClaims`` built from a verified token's payload without pydantic's validation.

Every well-formed Clerk token gives claims whose fields already have the types the model
stores, so validating them again is wasted work on every cold verification. The builders here
construct the model directly when that is certain and answer ``None`` otherwise (the caller
then validates with pydantic); tests compare both ways on tables and generated payloads.
What each claim of a payload becomes is worked out once per shape (claim names and value
types), and the organization fields are remembered per distinct ``o`` and ``fea``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from pydantic import BaseModel

from .claims import ClerkClaims
from .organization import normalize_organization
from .readonly import ReadOnlyDict, ReadOnlyList, read_only
from .reverification import parse_fva

__all__ = ["build_token_claims"]


# The fields that pydantic stores exactly as given when the value has this exact type (or is
# None: all but sub, iat and exp are optional). ``fva``, ``act`` and ``org_permissions`` are
# handled by name in build_token_claims; tests keep this table in step with the model.
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
_FIELD_NAMES = frozenset(_FIELD_ORDER)
_REQUIRED = ("sub", "iat", "exp")
_DATES = frozenset({"iat", "exp", "nbf"})
# Fields a token's claim of the same name is stored in as given; the others (organization,
# fva, pla, fea, act) come from Clerk's rules.
_AS_GIVEN = {
    name: kind
    for name, kind in _PLAIN_FIELDS.items()
    if name not in ("pla", "fea", "org_id", "org_slug", "org_role")
}
# Every field None, in declaration order: the start of each claims object's fields.
_NO_FIELDS = dict.fromkeys(_FIELD_ORDER)
# The names the normalisation always sets, whether the token has them or not.
_ALWAYS_SET = frozenset({"org_id", "org_slug", "org_role", "org_permissions", "fva", "pla", "fea"})


def build_token_claims(payload: Mapping[str, Any]) -> ClerkClaims | None:
    """``ClerkClaims`` built from a token payload without pydantic's validation, when every
    field already has the exact type validation would give it (the case of every well-formed
    Clerk token); ``None`` otherwise, and the caller validates. The result equals what
    validation builds: the same fields, the same read-only extras, the same fields set.

    The names and types of a payload's claims make its shape; an instance issues a handful of
    shapes, so what each claim becomes is worked out once per shape (:class:`_Shape`)."""
    values = tuple(payload.values())
    key = (tuple(payload), tuple(map(type, values)))
    shape = _shapes.get(key)
    if shape is None:
        shape = _Shape.of(*key)
        if len(_shapes) >= _SHAPES_MAX:
            _shapes.clear()
        _shapes[key] = shape
    if not shape.plain:
        return None
    organization = _organization(payload)
    if organization is None:
        return None
    org_id, org_slug, org_role, permissions, read_only_o = organization
    fields = _NO_FIELDS.copy()
    fields.update(zip(shape.fields, shape.pick_fields(values), strict=True))
    fva = payload.get("fva")
    if type(fva) is list and len(fva) == 2:  # parse_fva's rules, without its calls
        first, second = fva
        if type(first) is int and type(second) is int and first >= -1 and second >= -1:
            fields["fva"] = (first, second)
    elif fva is not None:
        fields["fva"] = parse_fva(fva)
    fields["org_id"] = org_id
    fields["org_slug"] = org_slug
    fields["org_role"] = org_role
    fields["org_permissions"] = permissions
    extra = dict(zip(shape.extras, shape.pick_extras(values), strict=True))
    for name in shape.containers:
        extra[name] = read_only_o if name == "o" and read_only_o else read_only(extra[name])
    claims = _new_claims(ClerkClaims)
    _set_dict(claims, fields)
    _set_extra(claims, ReadOnlyDict(extra))
    _set_fields_set(claims, shape.fields_set)
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


def _picker(positions: tuple[int, ...]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A function that takes the items at ``positions`` of a tuple, always as a tuple."""
    if len(positions) > 1:
        return operator.itemgetter(*positions)
    if positions:
        (position,) = positions
        return lambda values: (values[position],)
    return lambda values: ()


class _Shape(NamedTuple):
    """What each claim of one shape of payload (claim names and value types) becomes."""

    plain: bool  # False: some claim needs pydantic (a wrong type, a fraction, an Actor)
    fields: tuple[str, ...] = ()  # the fields stored as given, in payload order
    pick_fields: Callable[[tuple[Any, ...]], tuple[Any, ...]] = _picker(())
    extras: tuple[str, ...] = ()  # custom claims, in payload order
    pick_extras: Callable[[tuple[Any, ...]], tuple[Any, ...]] = _picker(())
    containers: tuple[str, ...] = ()  # the extras holding a list or a dict
    fields_set: set[str] = set()  # one shared set per shape; pydantic never changes it

    @classmethod
    def of(cls, names: tuple[str, ...], types: tuple[type, ...]) -> _Shape:
        fields: list[int] = []
        extras: list[int] = []
        for position, (name, kind) in enumerate(zip(names, types, strict=True)):
            expected = _PLAIN_FIELDS.get(name)
            if name in ("pla", "fea") and kind is not str:
                if issubclass(kind, str):
                    return _NOT_PLAIN
                continue  # malformed: reads as absent (None)
            if name in _AS_GIVEN or name in ("pla", "fea"):
                if kind is not expected and kind is not type(None):
                    return _NOT_PLAIN  # pydantic converts or refuses it
                fields.append(position)
            elif name not in _FIELD_NAMES:
                extras.append(position)
            elif name == "act" and kind is not type(None):
                return _NOT_PLAIN  # pydantic builds the Actor
        given = {names[p]: types[p] for p in fields}
        if any(given.get(name, type(None)) is type(None) for name in _REQUIRED):
            return _NOT_PLAIN
        positions, custom = tuple(fields), tuple(extras)
        return cls(
            plain=True,
            fields=tuple(names[p] for p in positions),
            pick_fields=_picker(positions),
            extras=tuple(names[p] for p in custom),
            pick_extras=_picker(custom),
            containers=tuple(names[p] for p in custom if issubclass(types[p], (list, dict))),
            fields_set=set(names) | _ALWAYS_SET,
        )


_NOT_PLAIN = _Shape(plain=False)
# Bounded, as token payloads are chosen by whoever signs them: emptied when full.
_shapes: dict[tuple[tuple[str, ...], tuple[type, ...]], _Shape] = {}
_SHAPES_MAX = 256


_Organization = tuple[Any, Any, Any, ReadOnlyList, "ReadOnlyDict | None"]
_NO_ORGANIZATION: _Organization = (None, None, None, ReadOnlyList(), None)
# The organization fields of each distinct ``o`` (its items, in order) and ``fea``, with the
# read-only copy of ``o``: the tokens of one member of one organization share them. Only an
# ``o`` of strings is remembered (a string never equals another type, so equal keys mean
# equal claims). Bounded: emptied when full.
_organizations: dict[tuple[Any, ...], _Organization] = {}
_ORGANIZATIONS_MAX = 1024


def _organization(payload: Mapping[str, Any]) -> _Organization | None:
    """``org_id``, ``org_slug``, ``org_role``, ``org_permissions`` by Clerk's rules and the
    read-only copy of ``o`` when remembered; ``None`` when a permission is not a plain string
    (pydantic decides)."""
    o = payload.get("o")
    if type(o) is dict:
        fea = payload.get("fea")
        key = (tuple(o.items()), fea)
        try:
            found = _organizations.get(key)
        except TypeError:  # a list or an object in o: not remembered
            found = None
        if found is None:
            found = _organization_of(normalize_organization(payload))
            strings = all(type(v) is str for v in o.values())
            if found is not None and strings and (fea is None or type(fea) is str):
                found = (*found[:4], ReadOnlyDict(o))
                if len(_organizations) >= _ORGANIZATIONS_MAX:
                    _organizations.clear()
                _organizations[key] = found
        return found
    version = payload.get("v")
    if o is None and type(version) is int and version >= 2:
        return _NO_ORGANIZATION  # a v2 token without an active organization
    return _organization_of(normalize_organization(payload))


def _organization_of(values: dict[str, Any]) -> _Organization | None:
    permissions = values["org_permissions"]
    if type(permissions) is not list or any(type(p) is not str for p in permissions):
        return None
    org_id, org_slug, org_role = values["org_id"], values["org_slug"], values["org_role"]
    for value in (org_id, org_slug, org_role):
        if value is not None and type(value) is not str:
            return None
    return org_id, org_slug, org_role, ReadOnlyList(permissions), None
