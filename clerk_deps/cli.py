"""The ``clerk-deps`` command: the troubleshooting decision tree, as tools.

    clerk-deps doctor [--token TOKEN]      is this configuration going to work?
    clerk-deps verify [TOKEN | -]          verify like the app; on failure, say how to fix it
    clerk-deps jwks-to-pem [--url URL]     PEM public keys from a key set (for CLERK_JWT_KEY)
    clerk-deps token USER_ID               create a session and mint a token (prints the token)
    clerk-deps call URL --user USER_ID     mint a token and call URL with it at once
    clerk-deps emulator [--port P]         run FakeClerk on 127.0.0.1

Exit status: 0 on success, 1 with a one-line reason on stderr otherwise, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from .backend_api import ClerkAPIError, ClerkBackendAPI
from .errors import ClerkAuthError, ErrorReason
from .keys import parse_key_set
from .settings import ClerkSettings, describe_validation_error
from .tokens import verify_token

__all__ = ["ADVICE", "main"]

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
}


class CommandError(Exception):
    """A failure reported as one line on stderr with exit status 1."""


# -- helpers ---------------------------------------------------------------------------------


def _load_settings() -> ClerkSettings:
    try:
        return ClerkSettings()
    except ValidationError as error:
        raise CommandError(f"settings are invalid: {describe_validation_error(error)}") from None


def _read_token(value: str | None, stdin: TextIO) -> str:
    token = (stdin.read() if value in (None, "-") else value or "").strip()
    if not token:
        raise CommandError("no token given: pass it as an argument or on stdin ('-')")
    return token


def _unverified_part(token: str, index: int) -> dict[str, Any] | None:
    """A decoded JWT part for diagnosis only; nothing here is trusted."""
    try:
        segment = token.split(".")[index]
        decoded = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError):
        return None
    return decoded if isinstance(decoded, dict) else None


def _backend_api(settings: ClerkSettings) -> ClerkBackendAPI:
    try:
        return ClerkBackendAPI.from_settings(settings)
    except ClerkAPIError as error:
        raise CommandError(error.message) from None


async def _mint_token(
    settings: ClerkSettings, user_id: str, template: str | None, expires_in: int | None
) -> str:
    api = _backend_api(settings)
    try:
        session = await api.create_session(user_id)
        return await api.create_session_token(session["id"], template, expires_in)
    except ClerkAPIError as error:
        raise CommandError(str(error)) from None


def _print_json(value: Any, out: TextIO) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str), file=out)


# -- doctor ----------------------------------------------------------------------------------


def _doctor_checks(settings: ClerkSettings, out: TextIO) -> list[str]:
    """Print the configuration and return the problems found (warnings are printed only)."""
    problems: list[str] = []
    raw_issuer = os.environ.get("CLERK_ISSUER", "")
    print(f"issuer:            {settings.issuer or '(not set)'}", file=out)
    if raw_issuer.endswith("/"):
        print("  note: CLERK_ISSUER has a trailing slash; it is stripped", file=out)
    host = urlsplit(settings.issuer).hostname if settings.issuer else None
    if host and not _looks_like_frontend_api(host):
        print(
            f"  warning: '{host}' does not look like a Clerk Frontend API host "
            "(*.clerk.accounts.dev or clerk.<your-domain>)",
            file=out,
        )
    source = settings.key_source_name
    print(f"key source:        {source or '(none)'}", file=out)
    if source is None:
        problems.append(ADVICE[ErrorReason.AUTH_NOT_CONFIGURED])
    if settings.audience is not None:
        print(
            f"  warning: audience {settings.audience!r} is set; Clerk session tokens carry no "
            "'aud', so every session token will be rejected",
            file=out,
        )
    print(f"authorized parties: {settings.authorized_parties or '(not checked)'}", file=out)
    print(f"secret key:        {'set' if settings.secret_key else '(not set)'}", file=out)
    return problems


def _looks_like_frontend_api(host: str) -> bool:
    """Development instances live on *.clerk.accounts.dev, production on clerk.<domain>."""
    local = host in ("localhost", "127.0.0.1", "::1")
    return local or host.endswith(".clerk.accounts.dev") or host.startswith("clerk.")


async def _doctor_keys(settings: ClerkSettings, out: TextIO) -> list[str]:
    if settings.key_source_name == "jwt_key":
        print("key set:           static PEM (CLERK_JWT_KEY), no network needed", file=out)
        return []
    if settings.key_source_name is None:
        return []
    url, headers = _key_set_location(settings)
    try:
        keys = parse_key_set(await _fetch_json(url, headers, settings.http_timeout))
    except CommandError as error:
        return [f"key set at {url} is not reachable: {error}"]
    if not keys:
        return [f"key set at {url} holds no usable RS256 signing key"]
    print(f"key set:           {url}: {len(keys)} key(s), kid {', '.join(keys)}", file=out)
    return []


def _key_set_location(settings: ClerkSettings) -> tuple[str, dict[str, str]]:
    if settings.jwks_url:
        return settings.jwks_url, {}
    if settings.secret_key is not None:
        secret = settings.secret_key.get_secret_value()
        return f"{settings.api_url}/v1/jwks", {"Authorization": f"Bearer {secret}"}
    raise CommandError("no key set URL: pass --url, or set CLERK_ISSUER or CLERK_SECRET_KEY")


async def _fetch_json(url: str, headers: dict[str, str], timeout: float) -> Any:
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url, headers=headers)
    except httpx.HTTPError as error:
        raise CommandError(f"{url}: {type(error).__name__}") from None
    if response.status_code != 200:
        raise CommandError(f"{url} answered HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise CommandError(f"{url} did not answer JSON") from None


async def cmd_doctor(args: argparse.Namespace, out: TextIO) -> int:
    files = [name for name in (".env", ".env.local") if (Path.cwd() / name).is_file()]
    print(f"dotenv files read: {', '.join(files) or '(none)'} in {Path.cwd()}", file=out)
    settings = _load_settings()
    problems = _doctor_checks(settings, out)
    problems += await _doctor_keys(settings, out)
    if args.token:
        problems += await _diagnose_token(args.token, settings, out)
    for problem in problems:
        print(f"problem: {problem}", file=out)
    if problems:
        raise CommandError(f"{len(problems)} problem(s) found; see above")
    print("ok: this configuration verifies Clerk session tokens", file=out)
    return 0


async def _diagnose_token(token: str, settings: ClerkSettings, out: TextIO) -> list[str]:
    header, payload = _unverified_part(token, 0), _unverified_part(token, 1)
    if header and payload:
        print(
            f"token (unverified): alg {header.get('alg')}, kid {header.get('kid')}, "
            f"iss {payload.get('iss')}, sub {payload.get('sub')}",
            file=out,
        )
    try:
        claims = await verify_token(token, settings)
    except ClerkAuthError as error:
        return [
            f"token rejected: {error.reason.value}: {error.message}; fix: {ADVICE[error.reason]}"
        ]
    print(f"token:             valid for {claims.exp - int(time.time())} s more", file=out)
    return []


# -- verify, jwks-to-pem ---------------------------------------------------------------------


async def cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    token = _read_token(args.token, sys.stdin)
    settings = _load_settings()
    try:
        claims = await verify_token(token, settings)
    except ClerkAuthError as error:
        print(f"rejected: {error.reason.value}\n{error.message}", file=out)
        print(f"fix: {ADVICE[error.reason]}", file=out)
        raise CommandError(f"token rejected ({error.reason.value})") from None
    _print_json(claims.model_dump(exclude_none=True), out)
    print(f"valid: {claims.exp - int(time.time())} s left", file=out)
    return 0


async def cmd_jwks_to_pem(args: argparse.Namespace, out: TextIO) -> int:
    headers: dict[str, str] = {}
    if args.url:
        url, timeout = args.url, 5.0
    else:
        settings = _load_settings()
        url, headers = _key_set_location(settings)
        timeout = settings.http_timeout
    document = await _fetch_json(url, headers, timeout)
    keys = parse_key_set(document)
    if args.kid:
        keys = {kid: key for kid, key in keys.items() if kid == args.kid}
    if not keys:
        wanted = f"with kid {args.kid!r} " if args.kid else ""
        raise CommandError(f"no RS256 signing key {wanted}in the key set at {url}")
    for kid, key in keys.items():
        pem = key.to_pem().decode()
        print(f"# kid: {kid}\n{pem.strip()}", file=out)
    return 0


# -- token, call, emulator -------------------------------------------------------------------


async def cmd_token(args: argparse.Namespace, out: TextIO) -> int:
    settings = _load_settings()
    print(await _mint_token(settings, args.user_id, args.template, args.expires_in), file=out)
    return 0


async def cmd_call(args: argparse.Namespace, out: TextIO) -> int:
    settings = _load_settings()
    try:
        body = json.loads(args.data) if args.data is not None else None
    except ValueError:
        raise CommandError("--data is not valid JSON") from None
    token = await _mint_token(settings, args.user, args.template, None)
    try:
        async with httpx.AsyncClient(timeout=settings.http_timeout) as client:
            response = await client.request(
                args.method.upper(),
                args.url,
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
    except httpx.HTTPError as error:
        raise CommandError(f"{args.url}: {type(error).__name__}") from None
    print(f"HTTP {response.status_code}", file=out)
    print(response.text, file=out)
    if response.is_error:
        raise CommandError(f"{args.method.upper()} {args.url} answered HTTP {response.status_code}")
    return 0


def run_emulator(port: int, out: TextIO, wait: Callable[[], None]) -> int:
    from .testing.fakeclerk import FakeClerk

    with FakeClerk().serve(port=port) as fake:
        print("FakeClerk is running; an app trusts it with:", file=out)
        for name, value in fake.env_vars().items():
            print(f"{name}={value}", file=out)
        out.flush()
        wait()
    return 0


def _wait_forever() -> None:  # pragma: no cover - interrupted by the user
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


# -- argument parsing ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clerk-deps", description="Diagnose and exercise Clerk session verification."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    doctor = commands.add_parser("doctor", help="check the configuration as the app loads it")
    doctor.add_argument("--token", help="also diagnose this token")

    verify = commands.add_parser("verify", help="verify a token like the app does")
    verify.add_argument("token", nargs="?", help="the token, or - (default) to read stdin")

    pem = commands.add_parser("jwks-to-pem", help="print PEM public keys from a key set")
    pem.add_argument("--url", help="key set URL (default: from the settings)")
    pem.add_argument("--kid", help="only the key with this kid")

    token = commands.add_parser("token", help="create a session and mint a session token")
    token.add_argument("user_id", help="the Clerk user id (user_...)")
    token.add_argument("--template", help="mint a JWT-template token instead")
    token.add_argument("--expires-in", type=int, help="token lifetime in seconds (30..)")

    call = commands.add_parser("call", help="mint a token and call URL with it at once")
    call.add_argument("url")
    call.add_argument("--user", required=True, help="the Clerk user id to act as")
    call.add_argument("--method", default="GET")
    call.add_argument("--data", help="JSON request body")
    call.add_argument("--template", help="use a JWT-template token")

    emulator = commands.add_parser("emulator", help="run FakeClerk on 127.0.0.1")
    emulator.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    return parser


_COMMANDS = {
    "doctor": cmd_doctor,
    "verify": cmd_verify,
    "jwks-to-pem": cmd_jwks_to_pem,
    "token": cmd_token,
    "call": cmd_call,
}


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Entry point of the ``clerk-deps`` console script."""
    args = build_parser().parse_args(argv)
    out = out or sys.stdout
    try:
        if args.command == "emulator":
            return run_emulator(args.port, out, _wait_forever)
        return asyncio.run(_COMMANDS[args.command](args, out))
    except CommandError as error:
        print(f"clerk-deps {args.command}: {error}", file=sys.stderr)
        return 1
