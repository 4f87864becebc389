"""Instant revocation: sessions Clerk reports ended are refused at once, cached tokens included.

A Clerk session token stays valid for up to a minute after its session ends. With
``CLERK_REVOCATION=webhooks`` (or ``backend_api``), every verified ``session.revoked``,
``session.ended`` and ``session.removed`` delivery puts the session on this process's
revocation list, and ``user.deleted`` puts the user there; :func:`verify_token
<clerk_deps.verify_token>` then refuses their tokens with 401 ``session-revoked``, after a
token-cache hit as after a fresh verification. A ``user.updated`` delivery of a banned user
puts the user there too, for the tokens issued up to the ban only: banning ends the user's
sessions, and once unbanned the user signs in again with new ones.

The list lives in process memory, so the check is two dictionary lookups. An entry is kept
until every token minted before the revocation has expired anyway (:data:`REVOCATION_HORIZON`,
extended by any later-expiring token of that session the check sees), so memory is bounded by
how many sessions end in that window. With ``CLERK_REDIS_URL`` the list is shared by every
worker through Redis (see :mod:`clerk_deps.store`); the check itself never leaves the process.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

from .claims import ClerkClaims
from .errors import ClerkAuthError, ErrorReason

__all__ = [
    "REVOCATION_HORIZON",
    "REVOKING_SESSION_EVENTS",
    "Revocation",
    "RevocationList",
    "clear_revocations",
    "revocation_list",
]

REVOCATION_HORIZON = 3600.0
"""Seconds a revocation is remembered. Clerk's session tokens live 60 s; tokens minted through
the Backend API with a longer ``expires_in_seconds`` are covered up to an hour, and longer
when the check sees one (the entry is extended to that token's ``exp``)."""

REVOKING_SESSION_EVENTS = frozenset({"session.revoked", "session.ended", "session.removed"})
"""Webhook event types after which a session's tokens must no longer be accepted."""

Kind = Literal["session", "user"]
_SWEEP_INTERVAL = 60.0


@dataclass(frozen=True)
class Revocation:
    """One revoked session (``kind="session"``, ``id`` its ``sid``) or deleted or banned user
    (``kind="user"``, ``id`` its ``sub``): refused until ``forget_at`` (epoch seconds).

    ``issued_until`` (epoch seconds, set for a ban) limits the refusal to tokens whose ``iat``
    is at or before it; ``None`` refuses every token of the session or user.
    """

    kind: Kind
    id: str
    revoked_at: float
    forget_at: float
    issued_until: float | None = None

    def to_json(self) -> str:
        """The compact form sent between workers."""
        fields: dict[str, Any] = {
            "k": self.kind,
            "i": self.id,
            "r": self.revoked_at,
            "f": self.forget_at,
        }
        if self.issued_until is not None:
            fields["u"] = self.issued_until
        return json.dumps(fields, separators=(",", ":"))

    def refuses(self, claims: ClerkClaims) -> bool:
        """Whether this entry refuses a token with these claims (its session or user matched)."""
        return self.issued_until is None or claims.iat <= self.issued_until

    def merged(self, other: Revocation) -> Revocation:
        """This entry and ``other`` (same kind and id) as one: the earliest revocation time,
        the latest horizon, and the wider ``issued_until`` (``None`` is the widest)."""
        until = (
            None
            if self.issued_until is None or other.issued_until is None
            else max(self.issued_until, other.issued_until)
        )
        return replace(
            self,
            revoked_at=min(self.revoked_at, other.revoked_at),
            forget_at=max(self.forget_at, other.forget_at),
            issued_until=until,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Revocation | None:
        """Parse :meth:`to_json` output; ``None`` for anything else (never raises)."""
        try:
            raw: Any = json.loads(text)
            kind, ident = raw["k"], raw["i"]
            revoked_at, forget_at = float(raw["r"]), float(raw["f"])
            until = raw.get("u")
            issued_until = None if until is None else float(until)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        if kind not in ("session", "user") or not isinstance(ident, str) or not ident:
            return None
        return cls(kind, ident, revoked_at, forget_at, issued_until)


class RevocationList:
    """Revoked sessions and deleted users, each until its ``forget_at``; thread-safe.

    Reads take no lock (single dict operations are atomic under the GIL); every change is
    made under the lock.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._sessions: dict[str, Revocation] = {}
        self._users: dict[str, Revocation] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._sessions) + len(self._users)

    def __repr__(self) -> str:
        return f"RevocationList(sessions={len(self._sessions)}, users={len(self._users)})"

    # -- changes -------------------------------------------------------------------------

    def revoke(
        self,
        kind: Kind,
        ident: str,
        *,
        now: float | None = None,
        horizon: float | None = None,
        issued_until: float | None = None,
    ) -> Revocation:
        """Refuse the tokens of session (or user) ``ident`` from now on (only those issued up
        to ``issued_until`` when it is given); returns the entry."""
        at = self.clock() if now is None else now
        keep = REVOCATION_HORIZON if horizon is None else horizon
        entry = Revocation(kind, ident, at, at + keep, issued_until)
        self.add(entry)
        return self._table(kind).get(ident, entry)

    def add(self, entry: Revocation) -> bool:
        """Merge ``entry`` (from a webhook, another worker or a snapshot); ``True`` when it
        revoked something new or made a revocation last longer or refuse more tokens. Expired
        entries are ignored."""
        now = self.clock()
        if entry.forget_at <= now:
            return False
        with self._lock:
            table = self._table(entry.kind)
            known = table.get(entry.id)
            if known is not None:
                entry = known.merged(entry)
                if entry == known:
                    return False
            table[entry.id] = entry
            if now >= self._next_sweep:
                self._sweep(now)
        return True

    def add_all(self, entries: Iterable[Revocation]) -> int:
        """Merge several entries; returns how many changed the list."""
        return sum(1 for entry in entries if self.add(entry))

    def snapshot(self) -> list[Revocation]:
        """Every entry still in force."""
        now = self.clock()
        with self._lock:
            entries = [*self._sessions.values(), *self._users.values()]
        return [entry for entry in entries if entry.forget_at > now]

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()
            self._users.clear()

    def _table(self, kind: Kind) -> dict[str, Revocation]:
        return self._sessions if kind == "session" else self._users

    def _sweep(self, now: float) -> None:
        for table in (self._sessions, self._users):
            for ident in [i for i, e in table.items() if e.forget_at <= now]:
                del table[ident]
        self._next_sweep = now + _SWEEP_INTERVAL

    # -- the check on the request path --------------------------------------------------------

    def find(self, claims: ClerkClaims, now: float) -> Revocation | None:
        """The entry that revokes these claims, if any."""
        entry = None
        if self._sessions and claims.sid is not None:
            entry = self._sessions.get(claims.sid)
        if entry is None and self._users:
            entry = self._users.get(claims.sub)
        if entry is None or entry.forget_at <= now or not entry.refuses(claims):
            return None
        if claims.exp > entry.forget_at:  # a longer-lived token: keep refusing until it expires
            self.add(replace(entry, forget_at=float(claims.exp)))
        return entry

    def check(self, claims: ClerkClaims, now: float) -> None:
        """Raise 401 ``session-revoked`` when these claims belong to a revoked session."""
        if not self._sessions and not self._users:
            return
        entry = self.find(claims, now)
        if entry is not None:
            raise revoked_error(entry, now)


def revoked_error(entry: Revocation, now: float) -> ClerkAuthError:
    """The 401 for a token of a revoked session or deleted user."""
    ago = max(0.0, now - entry.revoked_at)
    if entry.kind == "session":
        what = "the session was ended"
    else:
        what = "the user was banned" if entry.issued_until is not None else "the user was deleted"
    return ClerkAuthError(
        ErrorReason.SESSION_REVOKED,
        f"{what} {ago:.0f} s ago (Clerk reported it); sign in again to get a new session",
    )


_revocations = RevocationList()


def revocation_list() -> RevocationList:
    """This process's revocation list, shared by every settings object and event loop."""
    return _revocations


def clear_revocations() -> None:
    """Forget every revocation this process holds (tests)."""
    _revocations.clear()
