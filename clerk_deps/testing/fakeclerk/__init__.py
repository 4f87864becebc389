"""``FakeClerk``: a local emulator of the parts of Clerk a backend talks to.

It answers on Clerk's paths with Clerk's JSON shapes and error bodies
(``{"errors": [{"code", "message", "long_message"}], "clerk_trace_id"}``):

=======================================  ==========================================
``GET /.well-known/jwks.json``           public key set (Frontend API; no auth)
``GET /v1/jwks``                         key set (Backend API)
``POST /v1/users``                       create a user
``GET /v1/users/{user_id}``              a user object
``POST /v1/sessions``                    create a session for ``{"user_id"}``
``GET /v1/sessions/{session_id}``        a session object
``POST /v1/sessions/{id}/revoke``        revoke it
``POST /v1/sessions/{id}/tokens``        mint a session token
``POST /v1/sessions/{id}/tokens/{tpl}``  mint a JWT-template token
``POST /m2m_tokens``, ``/api_keys``      create an M2M token, an API key
``POST /.../verify``                     verify an M2M token, API key, OAuth token
``GET /sign-in``                         a browser signs in: ``__session`` cookie, redirect
=======================================  ==========================================

Every ``/v1`` path needs ``Authorization: Bearer <secret_key>`` (401 otherwise), and so do the
machine-token paths (which, as at Clerk, have no ``/v1``; M2M ones also take the machine secret
key). Tokens are
real RS256 JWTs: ``iss`` is the emulator's base URL and ``kid`` its current key's id, so an app
configured with :meth:`FakeClerk.settings` or :meth:`FakeClerk.env_vars` verifies them exactly
as it verifies Clerk's. Use it in process (``httpx.ASGITransport(app=fake.app)``) or as a real
server on 127.0.0.1 (``with FakeClerk().serve() as fake:``).

One module per Clerk resource: :mod:`.keys` (key sets, rotation, outages),
:mod:`.users_sessions` (users, sessions, session and template tokens), :mod:`.machines` (M2M
tokens, API keys, OAuth access tokens), :mod:`.frontend` (a browser's sign-in, which sets the
``__session`` cookie); :mod:`.core` holds the
state they share, :mod:`.common` Clerk's error bodies, and :mod:`.app` combines them into
:class:`FakeClerk` and serves the routes.
"""

from __future__ import annotations

from .app import FakeClerk
from .common import MAX_TOKEN_SECONDS, MIN_TOKEN_SECONDS, FakeClerkError, checked_lifetime
from .core import DEFAULT_BASE_URL
from .users_sessions import JwtTemplate
from .webhooks import WebhookDelivery, WebhookEndpoint

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_TOKEN_SECONDS",
    "MIN_TOKEN_SECONDS",
    "FakeClerk",
    "FakeClerkError",
    "JwtTemplate",
    "WebhookDelivery",
    "WebhookEndpoint",
    "checked_lifetime",
]
