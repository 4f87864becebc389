"""The typed result of a verified token: :class:`ClerkClaims` (with Clerk's ``has()``) and
:class:`Actor`, and how claims are built from a verified payload.

Clerk packs the active organization, billing and step-up state into compact claims. They are
normalised once, when the claims are built (:func:`ClerkClaims.from_payload`, which skips
pydantic's validation when every field already has its final type). The rules themselves live
in :mod:`clerk_deps.organization` (roles, permissions, ``fea``/``pla``, v1/v2 organization
claims), :mod:`clerk_deps.reverification` (``fva`` and step-up) and :mod:`clerk_deps.readonly`
(the read-only containers); their public names are importable from here too.
Everything here is pure: no I/O, no FastAPI, and nothing raises on a malformed claim. Anything
that cannot be read grants nothing, so every check that depends on it fails closed.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Annotated, Any, NamedTuple

from pydantic import AfterValidator, BaseModel, Field, ValidationInfo, model_validator

# Re-exported: these names were defined here before the rules moved to their own modules.
from .organization import (
    ScopedName,
    decode_org_permissions,
    has_scoped_name,
    normalize_org_permission,
    normalize_org_role,
    normalize_organization,
    parse_requested_name,
    parse_scoped_claim,
)
from .readonly import ReadOnlyDict, ReadOnlyList, ReadOnlyModel, read_only
from .reverification import (
    REVERIFICATION_LEVELS,
    REVERIFICATION_PRESETS,
    Reverification,
    ReverificationLevel,
    is_reverified,
    parse_fva,
    parse_reverification,
    reverification_requirement,
)

__all__ = [
    "REVERIFICATION_LEVELS",
    "REVERIFICATION_PRESETS",
    "Actor",
    "ClerkClaims",
    "ReadOnlyDict",
    "ReadOnlyList",
    "Reverification",
    "ReverificationLevel",
    "ScopedName",
    "decode_org_permissions",
    "has_scoped_name",
    "is_reverified",
    "normalize_org_permission",
    "normalize_org_role",
    "normalize_organization",
    "parse_fva",
    "parse_requested_name",
    "parse_reverification",
    "parse_scoped_claim",
    "read_only",
    "reverification_requirement",
]


class Actor(ReadOnlyModel):
    """Who is acting on the user's behalf (impersonation): the ``act`` claim."""

    sub: str | None = None
    sid: str | None = None
    iss: str | None = None
    type: str | None = None


# Marks a validation of a token payload (see ClerkClaims.from_payload); compared by identity.
_TOKEN_CONTEXT: dict[str, Any] = {"source": "token"}


class ClerkClaims(ReadOnlyModel):
    """Claims of a verified Clerk session token.

    ``sub``, ``iat`` and ``exp`` are always present; ``email`` is ``None`` unless the instance
    customised its session token (or :func:`require_clerk_user_with_email` filled it in).
    Organization data is normalised from v1 and v2 tokens: ``org_role`` always has the ``org:``
    prefix and ``org_permissions`` holds ``org:<feature>:<permission>`` keys. Malformed ``fva``,
    ``pla``, ``fea`` or organization claims do not fail verification; they read as absent,
    so every check that needs them fails closed. Custom claims are kept as extra fields.
    """

    sub: str
    iat: int
    exp: int
    iss: str | None = None
    nbf: int | None = None
    sid: str | None = None
    azp: str | None = None
    sts: str | None = None
    v: int | None = None
    jti: str | None = None
    pla: str | None = None
    fea: str | None = None
    email: str | None = None
    fva: tuple[int, int] | None = None
    act: Actor | None = None
    org_id: str | None = None
    org_slug: str | None = None
    org_role: str | None = None
    org_permissions: Annotated[list[str], AfterValidator(ReadOnlyList)] = Field(
        default_factory=ReadOnlyList
    )

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        # A token payload follows Clerk's rules to the letter (a v2 token's flat org_* claims
        # grant nothing); claims built in code (tests, overrides) may set org_* fields directly.
        return _normalized(data, from_token=info.context is _TOKEN_CONTEXT)

    @property
    def user_id(self) -> str:
        """The Clerk user id (``sub``)."""
        return self.sub

    @property
    def session_id(self) -> str | None:
        """The Clerk session id (``sid``); ``None`` for JWT-template tokens."""
        return self.sid

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ClerkClaims:
        """Build claims from a verified token payload (Clerk's v1/v2 organization rules)."""
        if cls is ClerkClaims:
            claims = build_token_claims(payload)
            if claims is not None:
                return claims
        return cls.model_validate(payload, context=_TOKEN_CONTEXT)

    def has(
        self,
        *,
        role: str | None = None,
        permission: str | None = None,
        feature: str | None = None,
        plan: str | None = None,
        reverification: str | Mapping[str, Any] | None = None,
    ) -> bool:
        """Clerk's ``has()``: ``True`` only when every dimension asked for passes.

        ``role`` and ``permission`` need an active organization (``admin`` equals
        ``org:admin``); ``feature`` and ``plan`` match ``fea``/``pla`` (``"x"`` in any scope,
        ``"o:x"``/``"org:x"`` or ``"u:x"``/``"user:x"`` in one); ``reverification`` is a preset
        name or ``{"level": ..., "afterMinutes": n}``. Asking for nothing, or anything
        malformed on either side, gives ``False``.
        """
        dimensions: list[tuple[Callable[[Any], bool], object]] = [
            (self._has_role, role),
            (self._has_permission, permission),
            (self._has_feature, feature),
            (self._has_plan, plan),
            (self._has_reverification, reverification),
        ]
        checks = [(check, value) for check, value in dimensions if value is not None]
        try:
            return bool(checks) and all(check(value) for check, value in checks)
        except (TypeError, ValueError):
            return False

    def _has_role(self, role: object) -> bool:
        return self.org_id is not None and self.org_role == normalize_org_role(role)

    def _has_permission(self, permission: object) -> bool:
        wanted = normalize_org_permission(permission)
        return self.org_id is not None and wanted in self.org_permissions

    def _has_feature(self, feature: object) -> bool:
        return has_scoped_name(self.fea, parse_requested_name(feature, "feature"))

    def _has_plan(self, plan: object) -> bool:
        return has_scoped_name(self.pla, parse_requested_name(plan, "plan"))

    def _has_reverification(self, config: object) -> bool:
        return is_reverified(self.fva, parse_reverification(config))


def _normalized(data: Mapping[str, Any], *, from_token: bool) -> dict[str, Any]:
    """The claims as the model stores them: organization data from either token shape, ``fva``
    parsed, malformed ``pla``/``fea`` dropped, NumericDates in whole seconds."""
    values = dict(data)
    values.update(normalize_organization(values, token=from_token))
    values["fva"] = parse_fva(values.get("fva"))
    for name in ("pla", "fea"):
        if not isinstance(values.get(name), str):
            values[name] = None
    # RFC 7519 NumericDates may be fractional; verification compares them exactly, the
    # model keeps whole seconds (rounded down).
    for name in ("iat", "exp", "nbf"):
        value = values.get(name)
        if isinstance(value, float) and math.isfinite(value):
            values[name] = math.floor(value)
    act = values.get("act")
    if isinstance(act, dict):
        values["act"] = read_only(act)
    return values


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
