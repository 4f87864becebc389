"""The typed result of a verified token, :class:`ClerkClaims`, and the rules of Clerk's ``has()``.

Clerk packs the active organization, billing and step-up state into compact claims. They are
normalised once, when the claims are built: v1 tokens carry flat ``org_*`` claims, v2 tokens an
``o`` object whose permissions are a bitmask per feature (``o.fpm``) over ``o.per`` and ``fea``.
Everything here is pure: no I/O, no FastAPI, and nothing raises on a malformed claim. Anything
that cannot be read grants nothing, so every check that depends on it fails closed.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Annotated, Any, Literal, NamedTuple, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

__all__ = [
    "REVERIFICATION_LEVELS",
    "REVERIFICATION_PRESETS",
    "Actor",
    "ClerkClaims",
    "Reverification",
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
    "reverification_requirement",
]


class _ReadOnlyModel(BaseModel):
    """A frozen model whose extra fields, and every list and dict in them, are read-only.

    Verified claims are shared by every request that presents the same token (the
    verified-token cache), so nothing may change them in place, custom claims included.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="after")
    def _read_only_extras(self) -> _ReadOnlyModel:
        extra = self.__pydantic_extra__
        if extra is not None and type(extra) is not ReadOnlyDict:
            frozen = ReadOnlyDict({name: read_only(value) for name, value in extra.items()})
            object.__setattr__(self, "__pydantic_extra__", frozen)
        return self


class Actor(_ReadOnlyModel):
    """Who is acting on the user's behalf (impersonation): the ``act`` claim."""

    sub: str | None = None
    sid: str | None = None
    iss: str | None = None
    type: str | None = None


# -- organization roles and permissions ---------------------------------------------------

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


# -- reverification ------------------------------------------------------------------------

ReverificationLevel = Literal["first_factor", "second_factor", "multi_factor"]
REVERIFICATION_LEVELS: frozenset[str] = frozenset({"first_factor", "second_factor", "multi_factor"})


class Reverification(NamedTuple):
    """A step-up requirement: a factor ``level`` verified less than ``after_minutes`` ago."""

    level: ReverificationLevel
    after_minutes: int

    def clerk_metadata(self) -> dict[str, Any]:
        """The requirement as Clerk's frontends read it: ``{"level", "afterMinutes"}``."""
        return {"level": self.level, "afterMinutes": self.after_minutes}


REVERIFICATION_PRESETS: Mapping[str, Reverification] = MappingProxyType(
    {
        "strict_mfa": Reverification("multi_factor", 10),
        "strict": Reverification("second_factor", 10),
        "moderate": Reverification("second_factor", 60),
        "lax": Reverification("second_factor", 1440),
    }
)


def _positive_minutes(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"after_minutes must be an int, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"after_minutes must be positive, got {value}")
    return value


def _level(value: object) -> ReverificationLevel:
    if value not in REVERIFICATION_LEVELS:
        raise ValueError(
            f"unknown reverification level {value!r}; expected one of "
            f"{', '.join(sorted(REVERIFICATION_LEVELS))}"
        )
    return cast(ReverificationLevel, value)


def reverification_requirement(
    level: str = "strict", after_minutes: int | None = None
) -> Reverification:
    """A preset (``strict_mfa``, ``strict``, ``moderate``, ``lax``) or a ``level`` with
    ``after_minutes``. Raises ``TypeError``/``ValueError`` for anything else."""
    preset = REVERIFICATION_PRESETS.get(level) if isinstance(level, str) else None
    if preset is not None:
        if after_minutes is not None:
            raise ValueError(
                f"preset {level!r} fixes its own age ({preset.after_minutes} min); for another "
                f"age pass level={preset.level!r}, after_minutes=..."
            )
        return preset
    if level not in REVERIFICATION_LEVELS:
        raise ValueError(
            f"unknown reverification preset or level {level!r}; presets: "
            f"{', '.join(REVERIFICATION_PRESETS)}; levels: "
            f"{', '.join(sorted(REVERIFICATION_LEVELS))}"
        )
    if after_minutes is None:
        raise ValueError(f"level {level!r} needs after_minutes=")
    return Reverification(_level(level), _positive_minutes(after_minutes))


def parse_reverification(config: object) -> Reverification:
    """A preset name or a mapping ``{"level": ..., "afterMinutes" (or "after_minutes"): n}``,
    as Clerk's ``has({reverification})`` takes it."""
    if isinstance(config, str):
        return reverification_requirement(config)
    if isinstance(config, Mapping):
        minutes = config.get("after_minutes", config.get("afterMinutes"))
        return Reverification(_level(config.get("level")), _positive_minutes(minutes))
    raise TypeError(f"reverification must be a preset name or a mapping, not {config!r}")


def _factor_age(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        return None
    return value


def parse_fva(value: object) -> tuple[int, int] | None:
    """``fva`` as ``(minutes since first factor, minutes since second factor)``, ``-1`` =
    never; ``None`` when missing or malformed (not two integers, each ``-1`` or more)."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    first, second = _factor_age(value[0]), _factor_age(value[1])
    if first is None or second is None:
        return None
    return first, second


def is_reverified(fva: tuple[int, int] | None, requirement: Reverification) -> bool:
    """Whether ``fva`` satisfies ``requirement``, by the rules of Clerk's ``has()``.

    A factor is fresh when it is not ``-1`` and ``after_minutes > age``. ``first_factor``
    needs a fresh first factor. ``second_factor`` needs a fresh second factor, or a fresh
    first factor when no second factor is enrolled. ``multi_factor`` needs both fresh, or a
    fresh first factor when no second factor is enrolled. Missing ``fva`` fails.
    """
    if fva is None:
        return False
    first, second = fva
    first_fresh = first != -1 and requirement.after_minutes > first
    second_fresh = second != -1 and requirement.after_minutes > second
    if requirement.level == "first_factor" or second == -1:
        return first_fresh
    if requirement.level == "second_factor":
        return second_fresh
    return first_fresh and second_fresh


# -- the claims model ----------------------------------------------------------------------


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


class ReadOnlyList(list[Any]):
    """A list that refuses changes; see :class:`_ReadOnlyModel`."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("verified claims are read-only; copy the value to change it")

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (list(self),))


class ReadOnlyDict(dict[str, Any]):
    """A dict that refuses changes; see :class:`ReadOnlyList`."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("verified claims are read-only; copy the value to change it")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))


def read_only(value: Any) -> Any:
    """``value`` with every list and dict in it replaced by a read-only copy."""
    if isinstance(value, list):
        return ReadOnlyList(
            [read_only(item) if isinstance(item, (list, dict)) else item for item in value]
        )
    if isinstance(value, dict):
        return ReadOnlyDict(
            {
                key: read_only(item) if isinstance(item, (list, dict)) else item
                for key, item in value.items()
            }
        )
    return value


# Marks a validation of a token payload (see ClerkClaims.from_payload); compared by identity.
_TOKEN_CONTEXT: dict[str, Any] = {"source": "token"}


class ClerkClaims(_ReadOnlyModel):
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
            claims = _construct(_normalized(payload, from_token=True))
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
# handled by name in _construct; tests keep this table in step with the model.
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
_plain_values = operator.itemgetter(*_PLAIN_FIELDS)
# Which combinations of the plain fields' types the model stores as given (a token issuer
# writes a handful: claims present or absent); bounded, as token payloads are chosen by
# whoever signs them.
_plain_types_ok: dict[tuple[type, ...], bool] = {}


def _plain_types_fit(types: tuple[type, ...]) -> bool:
    fits = _plain_types_ok.get(types)
    if fits is None:
        fits = all(
            found is kind or (found is type(None) and name not in ("sub", "iat", "exp"))
            for found, (name, kind) in zip(types, _PLAIN_FIELDS.items(), strict=True)
        )
        if len(_plain_types_ok) < 256:
            _plain_types_ok[types] = fits
    return fits


def _construct(values: dict[str, Any]) -> ClerkClaims | None:
    """``ClerkClaims`` built from normalized ``values`` without pydantic's validation, when every
    field already has the exact type validation would give it (the case of every well-formed
    Clerk token); ``None`` otherwise, and the caller validates. The result equals what
    validation builds: the same fields, the same read-only extras, the same fields set."""
    # a dict of exactly the fields (a verified token's claims stay cached: no spare room)
    fields = dict(zip(_FIELD_ORDER, map(values.get, _FIELD_ORDER), strict=True))
    extra = {
        name: read_only(value) if isinstance(value, (list, dict)) else value
        for name, value in values.items()
        if name not in _FIELD_NAMES
    }
    if not _plain_types_fit(tuple(map(type, _plain_values(fields)))):
        return None
    # fva is parse_fva's result (two ints, or None); act needs pydantic to build the Actor
    if fields["act"] is not None:
        return None
    permissions = fields["org_permissions"]  # always set by normalize_organization
    if type(permissions) is not list:
        return None
    for permission in permissions:
        if type(permission) is not str:
            return None
    fields["org_permissions"] = ReadOnlyList(permissions)
    claims = ClerkClaims.__new__(ClerkClaims)
    object.__setattr__(claims, "__dict__", fields)
    object.__setattr__(claims, "__pydantic_extra__", ReadOnlyDict(extra))
    object.__setattr__(claims, "__pydantic_fields_set__", _fields_set(values))
    object.__setattr__(claims, "__pydantic_private__", None)
    return claims


# The set of claim names a token carried, one object per distinct set: tokens of one instance
# carry the same few sets, and each set costs about 1 KiB per cached token. pydantic never
# changes a model's fields set in place (model_copy copies it), and these models are frozen.
_fields_sets: dict[tuple[str, ...], set[str]] = {}


def _fields_set(values: dict[str, Any]) -> set[str]:
    names = tuple(values)
    shared = _fields_sets.get(names)
    if shared is None:
        shared = set(names)
        if len(_fields_sets) < 256:
            _fields_sets[names] = shared
    return shared
