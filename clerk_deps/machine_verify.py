"""Opaque machine tokens (``mt_``, ``oat_``, ``ak_``), verified through Clerk's Backend API.

Only Clerk can judge them; per instance, an :class:`OpaqueVerifier` makes that cheap and
safe:

1. a token of impossible shape is refused before anything else (it never leaves the process);
2. a remembered verdict answers at once: "valid" for at most ``machine_cache_ttl`` and never
   past the token's expiry, "unknown" for ``machine_negative_cache_ttl``, "revoked" or
   "expired" for ``machine_cache_ttl`` (those never become valid again);
3. concurrent requests with one new token wait for a single call (single flight);
4. a call needs a unit of the per-process budget (``machine_verify_rate`` per second, bursts
   of ``machine_verify_burst``); without one, or while Clerk asks to back off (429 with
   ``Retry-After``), the answer is 503 ``machine-verification-unavailable`` with
   ``Retry-After``, while tokens already verified keep working.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import threading
import weakref
from functools import lru_cache
from typing import Any

from pydantic import SecretStr, ValidationError

from .backend_api import ClerkAPIError, ClerkBackendAPI
from .budget import CallBudget
from .errors import ClerkAuthError, ErrorReason
from .machine_cache import (
    SharedVerdicts,
    Verdict,
    VerdictCache,
    shared_verdicts_for,
    verdict_key,
)
from .machine_tokens import (
    LABELS,
    MachineAuth,
    TokenType,
    check_opaque_shape,
)
from .settings import ClerkSettings

__all__ = ["OpaqueVerifier", "clear_verifiers", "verifier_for"]

logger = logging.getLogger("clerk_deps")

_UNAVAILABLE_RETRY = 5  # seconds, when Clerk failed without saying how long to wait
_RATE_LIMITED_RETRY = 10  # seconds, a 429 without Retry-After (Clerk's window is 10 s)


# -- opaque tokens -----------------------------------------------------------------------------


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None and value.get_secret_value() else None


@lru_cache(maxsize=64)
def _fingerprint(*parts: str | None) -> str:
    return hashlib.sha256("\n".join(p or "" for p in parts).encode()).hexdigest()[:32]


class OpaqueVerifier:
    """Verdict cache, single flight and call budget for one instance; see the module docstring."""

    def __init__(self, settings: ClerkSettings) -> None:
        self.settings = settings
        self._secret_key = _secret(settings.secret_key)
        self._machine_key = _secret(settings.machine_secret_key)
        self.instance = _fingerprint(settings.api_url, self._secret_key, self._machine_key)
        self.cache = VerdictCache(settings.machine_cache_size)
        self.budget = CallBudget(settings.machine_verify_rate, settings.machine_verify_burst)
        self._flights: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Task[Verdict]]
        ] = weakref.WeakKeyDictionary()
        self._flights_lock = threading.Lock()
        self._next_budget_log = -math.inf

    def __repr__(self) -> str:
        return f"OpaqueVerifier(api_url={self.settings.api_url!r}, cached={len(self.cache)})"

    async def verify(self, token: str, kind: TokenType, now: float) -> MachineAuth:
        """The machine behind ``token``, or raise the contract's reason for it."""
        # Only well-shaped tokens of a configured instance are ever cached, so a hit needs
        # neither check again.
        verdict = self.cache.get(token, now)
        if verdict is None:
            self._check_configured(kind)
            check_opaque_shape(token, kind)
            verdict = await self._single_flight(token, kind, now)
        if verdict.auth is None:
            raise ClerkAuthError(verdict.reason, verdict.message)
        return verdict.auth

    def _check_configured(self, kind: TokenType) -> None:
        if self._secret_key is None and not (kind is TokenType.M2M_TOKEN and self._machine_key):
            variables = "CLERK_MACHINE_SECRET_KEY or " if kind is TokenType.M2M_TOKEN else ""
            raise ClerkAuthError(
                ErrorReason.AUTH_NOT_CONFIGURED,
                f"verifying {LABELS[kind]} needs Clerk's Backend API: set "
                f"{variables}CLERK_SECRET_KEY",
            )

    async def _single_flight(self, token: str, kind: TokenType, now: float) -> Verdict:
        # The call runs as a task of its own, so a caller that goes away (a client
        # disconnecting) does not cancel it for the others waiting on it.
        loop = asyncio.get_running_loop()
        with self._flights_lock:
            flights = self._flights.setdefault(loop, {})
            flight = flights.get(token)
            if flight is None:
                shared = shared_verdicts_for(self.settings)
                if shared is None:  # over budget: refused here, before any task is made
                    self._spend_budget(now)
                flight = flights[token] = loop.create_task(self._ask(token, kind, now, shared))
                flight.add_done_callback(lambda done: _landed(flights, token, done))
        return await asyncio.shield(flight)

    def _spend_budget(self, now: float) -> None:
        wait = self.budget.take(now)
        if wait > 0:
            # A flood is refused request by request, but logged at most once a minute.
            log = now >= self._next_budget_log
            if log:
                self._next_budget_log = now + 60
            raise self._unavailable(
                "this process's budget of Backend API verification calls is spent "
                "(CLERK_MACHINE_VERIFY_RATE / CLERK_MACHINE_VERIFY_BURST)",
                wait,
                log=log,
            )

    async def _ask(
        self, token: str, kind: TokenType, now: float, shared: SharedVerdicts | None
    ) -> Verdict:
        """Ask the shared store (if any; the budget is then spent here), then Clerk; remember
        the answer."""
        if shared is not None:
            key = verdict_key(self.instance, token)
            text = await shared.get(key)
            found = Verdict.from_text(text) if text is not None else None
            if found is not None:
                self._remember(token, found, now, None)
                return found
            self._spend_budget(now)
        verdict, until = await self._call_clerk(token, kind, now)
        self._remember(token, verdict, now, until)
        if shared is not None and until > now:
            await shared.put(key, verdict.to_text(), until - now)
        return verdict

    def _remember(self, token: str, verdict: Verdict, now: float, until: float | None) -> None:
        if until is None:
            until = self._deadline(verdict, now)
        self.cache.put(token, verdict, until, now)

    def _deadline(self, verdict: Verdict, now: float) -> float:
        settings = self.settings
        if verdict.auth is None:
            lasting = verdict.reason in (ErrorReason.TOKEN_REVOKED, ErrorReason.TOKEN_EXPIRED)
            return now + (
                settings.machine_cache_ttl if lasting else settings.machine_negative_cache_ttl
            )
        expires = verdict.auth.expires_at
        until = now + settings.machine_cache_ttl
        return until if expires is None else min(until, expires)

    async def _call_clerk(self, token: str, kind: TokenType, now: float) -> tuple[Verdict, float]:
        use_machine_key = kind is TokenType.M2M_TOKEN and self._machine_key is not None
        secret = self._machine_key if use_machine_key else self._secret_key
        assert secret is not None  # _check_configured
        api = ClerkBackendAPI(
            secret, api_url=self.settings.api_url, timeout=self.settings.http_timeout
        )
        try:
            answer = await api.verify_machine_token(kind.value, token)
        except ClerkAPIError as error:
            verdict = self._verdict_for_error(error, kind, use_machine_key, now)
        else:
            verdict = _verdict_for_answer(answer, kind, now)
        return verdict, self._deadline(verdict, now)

    def _verdict_for_error(
        self, error: ClerkAPIError, kind: TokenType, use_machine_key: bool, now: float
    ) -> Verdict:
        status = error.status_code
        if status in (401, 403):
            variable = "CLERK_MACHINE_SECRET_KEY" if use_machine_key else "CLERK_SECRET_KEY"
            raise ClerkAuthError(
                ErrorReason.AUTH_NOT_CONFIGURED,
                f"Clerk refused {variable} (HTTP {status}) while verifying "
                f"{LABELS[kind]}: check that it is this instance's key",
            )
        if status == 429:
            wait = error.retry_after if error.retry_after is not None else _RATE_LIMITED_RETRY
            self.budget.pause_until(now + wait)
            raise self._unavailable("Clerk's Backend API rate limit was reached (HTTP 429)", wait)
        if status is None or status >= 500:
            cause = "no answer" if status is None else f"HTTP {status}"
            wait = error.retry_after if error.retry_after is not None else _UNAVAILABLE_RETRY
            raise self._unavailable(f"Clerk's Backend API failed ({cause}, {error.code})", wait)
        code = (error.code or "").lower()
        if "revoked" in code:
            return Verdict(None, ErrorReason.TOKEN_REVOKED, _refusal(kind, "has been revoked"))
        if "expired" in code:
            return Verdict(None, ErrorReason.TOKEN_EXPIRED, _refusal(kind, "has expired"))
        return Verdict(
            None, ErrorReason.TOKEN_INVALID, _refusal(kind, f"is unknown to Clerk (HTTP {status})")
        )

    def _unavailable(self, cause: str, wait: float, *, log: bool = True) -> ClerkAuthError:
        seconds = max(1, math.ceil(wait))
        if log:
            logger.warning("clerk_deps: machine-token verification unavailable: %s", cause)
        return ClerkAuthError(
            ErrorReason.MACHINE_VERIFICATION_UNAVAILABLE,
            f"could not verify the machine token: {cause}; retry in {seconds} s",
            retry_after=seconds,
        )


def _landed(
    flights: dict[str, asyncio.Task[Verdict]], token: str, done: asyncio.Task[Verdict]
) -> None:
    if flights.get(token) is done:
        del flights[token]
    if not done.cancelled():
        done.exception()  # retrieved, even when every waiter has gone


def _refusal(kind: TokenType, what: str) -> str:
    return f"this {LABELS[kind].split(' ', 1)[1]} {what}"


_OBJECTS = {
    TokenType.M2M_TOKEN: "machine_to_machine_token",
    TokenType.API_KEY: "api_key",
    TokenType.OAUTH_TOKEN: "clerk_idp_oauth_access_token",
}


def _verdict_for_answer(answer: dict[str, Any], kind: TokenType, now: float) -> Verdict:
    """A 200 from Clerk: the machine, or the reason it is refused."""
    if answer.get("active") is False:
        return Verdict(None, ErrorReason.TOKEN_INVALID, _refusal(kind, "is not active"))
    if answer.get("revoked") is True:
        return Verdict(None, ErrorReason.TOKEN_REVOKED, _refusal(kind, "has been revoked"))
    expiration = answer.get("expiration")
    expires_at = expiration / 1000 if isinstance(expiration, (int, float)) else None
    if answer.get("expired") is True or (expires_at is not None and expires_at <= now):
        return Verdict(None, ErrorReason.TOKEN_EXPIRED, _refusal(kind, "has expired"))
    if answer.get("object") not in (None, _OBJECTS[kind]):
        raise _garbled(kind)
    try:
        auth = MachineAuth(
            token_type=kind,
            id=answer.get("id"),
            subject=answer.get("subject"),
            scopes=answer.get("scopes") or [],
            claims=answer.get("claims") if kind is not TokenType.OAUTH_TOKEN else None,
            name=answer.get("name") if kind is TokenType.API_KEY else None,
            client_id=answer.get("client_id") if kind is TokenType.OAUTH_TOKEN else None,
            expires_at=expires_at,
        )
    except ValidationError:
        raise _garbled(kind) from None
    return Verdict(auth)


def _garbled(kind: TokenType) -> ClerkAuthError:
    return ClerkAuthError(
        ErrorReason.MACHINE_VERIFICATION_UNAVAILABLE,
        f"Clerk's answer for {LABELS[kind]} was not the expected object",
        retry_after=_UNAVAILABLE_RETRY,
    )


# -- one verifier per instance -----------------------------------------------------------------

_verifiers: dict[tuple[Any, ...], OpaqueVerifier] = {}
_verifiers_lock = threading.Lock()


_by_settings: dict[int, tuple[ClerkSettings, OpaqueVerifier]] = {}
_BY_SETTINGS_MAX = 64


def verifier_for(settings: ClerkSettings) -> OpaqueVerifier:
    """The shared verifier of ``settings``' instance (API URL and keys) and cache settings."""
    # Settings are immutable: remember the answer per object (the common case is one object
    # for the life of the process), bounded so that settings built per request cannot pile up.
    known = _by_settings.get(id(settings))
    if known is not None and known[0] is settings:
        return known[1]
    verifier = _shared_verifier(settings)
    with _verifiers_lock:
        if len(_by_settings) >= _BY_SETTINGS_MAX:
            _by_settings.clear()
        _by_settings[id(settings)] = (settings, verifier)
    return verifier


def _shared_verifier(settings: ClerkSettings) -> OpaqueVerifier:
    lookup = (
        settings.api_url,
        _fingerprint(_secret(settings.secret_key), _secret(settings.machine_secret_key)),
        settings.machine_cache_ttl,
        settings.machine_negative_cache_ttl,
        settings.machine_cache_size,
        settings.machine_verify_rate,
        settings.machine_verify_burst,
        settings.http_timeout,
    )
    verifier = _verifiers.get(lookup)
    if verifier is None:
        with _verifiers_lock:
            verifier = _verifiers.get(lookup)
            if verifier is None:
                verifier = _verifiers[lookup] = OpaqueVerifier(settings)
    return verifier


def clear_verifiers() -> None:
    """Forget every verifier, with its verdicts and budget (tests; reloaded configuration)."""
    with _verifiers_lock:
        _verifiers.clear()
        _by_settings.clear()
