"""Step-up (reverification) by the rules of Clerk's ``has({reverification})``.

Owns: :class:`Reverification` (a factor level and a maximum age), its presets
(``strict_mfa``, ``strict``, ``moderate``, ``lax``), the parsing of a requirement and of the
``fva`` claim, and :func:`is_reverified`. Pure: a malformed ``fva`` reads as absent and so
fails every requirement.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, cast

__all__ = [
    "REVERIFICATION_LEVELS",
    "REVERIFICATION_PRESETS",
    "Reverification",
    "ReverificationLevel",
    "is_reverified",
    "parse_fva",
    "parse_reverification",
    "reverification_requirement",
]

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
