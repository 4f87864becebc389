"""Read-only containers for verified claims: :class:`ReadOnlyList`, :class:`ReadOnlyDict`,
:func:`read_only`, and :class:`ReadOnlyModel`, the frozen pydantic base whose extra fields are
read-only too.

Verified claims are shared by every request that presents the same token (the verified-token
cache), so nothing may change them in place, custom claims included.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["ReadOnlyDict", "ReadOnlyList", "ReadOnlyModel", "read_only"]


class ReadOnlyList(list[Any]):
    """A list that refuses changes; see :class:`ReadOnlyModel`."""

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


class ReadOnlyModel(BaseModel):
    """A frozen model whose extra fields, and every list and dict in them, are read-only.

    Verified claims are shared by every request that presents the same token (the
    verified-token cache), so nothing may change them in place, custom claims included.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="after")
    def _read_only_extras(self) -> ReadOnlyModel:
        extra = self.__pydantic_extra__
        if extra is not None and type(extra) is not ReadOnlyDict:
            frozen = ReadOnlyDict({name: read_only(value) for name, value in extra.items()})
            object.__setattr__(self, "__pydantic_extra__", frozen)
        return self
