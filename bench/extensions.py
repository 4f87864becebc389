"""Rows for machine tokens, revocation and the shared store.

Each function measures one row, or returns why it cannot yet (the feature it times is not in
``clerk_deps``). To fill a row in, replace the body of its function: return a
:class:`~harness.Measurement` whose ``run_once`` makes N calls and returns N, with any state it
needs prepared before returning (or in ``before_each``, untimed). ``run.py`` puts it in the
round-robin with the other rows and prints it with its target.
"""

from __future__ import annotations

import importlib.util

from harness import Measurement

from clerk_deps import ClerkSettings


def _missing(module: str, what: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return f"needs {module} ({what})"
    return None


def api_key_cached(settings: ClerkSettings, iterations: int) -> Measurement | str:
    """An ``ak_`` API key whose verdict is cached: ``authenticate(key, settings,
    accepts="api_key")`` again and again, after one call has asked FakeClerk on 127.0.0.1.
    Target: no more than a warm session-token hit (the ``warm`` row's ratio)."""
    return _missing("clerk_deps.machine", "machine tokens") or "not measured yet"


def m2m_jwt_cold(settings: ClerkSettings, count: int) -> Measurement | str:
    """Distinct M2M JWTs (``sub`` ``mch_...``) minted by the testing kit, verified locally by
    ``authenticate(token, settings, accepts="m2m_token")``, every cache emptied before each
    repeat. Target: no more than a cold session token (the ``cold`` row's ratio)."""
    return _missing("clerk_deps.machine", "machine tokens") or "not measured yet"


def revocation_warm(settings: ClerkSettings, token: str, iterations: int) -> Measurement | str:
    """A warm hit with ``revocation="webhooks"`` and a revocation list holding other sessions:
    the same loop as the ``warm`` row. Reported as its difference with the ``warm`` row.
    Target: <= 0.05x the floor."""
    return _missing("clerk_deps.revocation", "revocation") or "not measured yet"


def redis_propagation(samples: int) -> tuple[float, float] | str:
    """Two processes with ``CLERK_REDIS_URL`` on a local redis-server: one receives a
    ``session.revoked`` webhook, the other polls its in-process check; the time until the
    second refuses the session, ``samples`` times. Returns (median, worst) in milliseconds.
    Target: every worker within a second."""
    return _missing("clerk_deps.store", "the shared store") or "not measured yet"
