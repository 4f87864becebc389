"""What to do about each reason code: the fix line that ``verify`` and ``doctor`` print."""

from __future__ import annotations

from ..errors import ErrorReason

__all__ = ["ADVICE"]

ADVICE: dict[ErrorReason, str] = {
    ErrorReason.SESSION_TOKEN_MISSING: "send 'Authorization: Bearer <token>' (getToken() in the "
    "browser) or the __session cookie; from a shell: clerk-deps call URL --user USER_ID",
    ErrorReason.TOKEN_INVALID: "this is not a Clerk session token: copy the whole JWT "
    "(three dot-separated parts, starting 'eyJ'), not a secret key or a session id",
    ErrorReason.TOKEN_INVALID_ALGORITHM: "Clerk signs session tokens with RS256; this token was "
    "not made by Clerk (or was tampered with)",
    ErrorReason.JWK_KID_MISMATCH: "the key that signed this token is not in the key set: the "
    "token belongs to another Clerk instance, or keys rotated; check CLERK_ISSUER",
    ErrorReason.TOKEN_INVALID_SIGNATURE: "the key does not match: keys rotated or the token is "
    "from another instance; run 'clerk-deps jwks-to-pem' to refresh CLERK_JWT_KEY, or unset "
    "CLERK_JWT_KEY and let CLERK_ISSUER's key set URL keep keys current",
    ErrorReason.TOKEN_EXPIRED: "Clerk session tokens live 60 s: mint a fresh one right before "
    "the call ('clerk-deps call URL --user USER_ID' does both in one step)",
    ErrorReason.TOKEN_NOT_ACTIVE_YET: "this machine's clock is behind: sync it (NTP), or raise "
    "CLERK_LEEWAY a little (at most 60)",
    ErrorReason.TOKEN_IAT_IN_THE_FUTURE: "this machine's clock is behind: sync it (NTP), or "
    "raise CLERK_LEEWAY a little (at most 60)",
    ErrorReason.TOKEN_INVALID_ISSUER: "set CLERK_ISSUER to the Frontend API URL exactly as in "
    "the token's iss (Clerk dashboard > API keys), without a trailing slash",
    ErrorReason.TOKEN_INVALID_AUDIENCE: "Clerk session tokens carry no 'aud': unset "
    "CLERK_JWT_AUDIENCE / CLERK_AUDIENCE unless you verify JWT-template tokens",
    ErrorReason.TOKEN_INVALID_AUTHORIZED_PARTIES: "add the app's origin (scheme://host:port) to "
    "CLERK_AUTHORIZED_PARTIES, or check where the request came from",
    ErrorReason.TOKEN_TYPE_MISMATCH: "this is not a session token (a JWT template, OAuth or "
    "machine token); use getToken() without a template, or set CLERK_ACCEPT_JWT_TEMPLATES=true",
    ErrorReason.SESSION_PENDING: "the user has pending session tasks (e.g. choose an "
    "organization); finish them, or set CLERK_ACCEPT_PENDING_SESSIONS=true",
    ErrorReason.JWK_FAILED_TO_LOAD: "the key set could not be fetched: check network access to "
    "the JWKS URL ('clerk-deps doctor'), or set CLERK_JWT_KEY for networkless verification",
    ErrorReason.AUTH_NOT_CONFIGURED: "set CLERK_ISSUER (or CLERK_PUBLISHABLE_KEY) in the "
    "environment, .env or .env.local, then restart the server (a reload does not re-read it)",
    ErrorReason.ORG_ROLE_REQUIRED: "switch to an organization where the user has this role",
    ErrorReason.ORG_PERMISSION_REQUIRED: "grant the permission to the user's role in the "
    "active organization",
    ErrorReason.REVERIFICATION_REQUIRED: "the user must verify again (Clerk's frontend does "
    "this when it sees the reverification error)",
    ErrorReason.FEATURE_REQUIRED: "the user's or organization's plan lacks this feature",
    ErrorReason.PLAN_REQUIRED: "the user or organization is not on this plan",
    ErrorReason.SESSION_REVOKED: "Clerk has ended this session (signed out, revoked or user "
    "deleted): sign in again for a new session",
    ErrorReason.WEBHOOK_INVALID: "check CLERK_WEBHOOK_SIGNING_SECRET (the endpoint's whsec_... "
    "Signing Secret), pass the raw body unchanged, and keep the server clock in sync",
    ErrorReason.SESSION_STATUS_UNAVAILABLE: "Clerk's Backend API could not tell the session's "
    "status; retry, or set CLERK_REVOCATION_FAIL_OPEN=true to accept tokens meanwhile",
    ErrorReason.TOKEN_REVOKED: "this machine token or API key was revoked at Clerk: create a "
    "new one ('clerk-deps token --type api_key OWNER' against the emulator)",
    ErrorReason.SCOPE_REQUIRED: "create the API key or token with the scope the route needs",
    ErrorReason.MACHINE_VERIFICATION_UNAVAILABLE: "Clerk's Backend API could not be asked (down, "
    "rate-limited, or the per-process budget is spent): retry after Retry-After seconds",
    ErrorReason.ORIGIN_NOT_ALLOWED: "list the page's origin in require_origin(...) (a page on "
    "another site must not use your user's cookie)",
}
