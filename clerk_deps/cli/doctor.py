"""``clerk-deps doctor``: is this configuration going to work, and why does this token fail?"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TextIO
from urllib.parse import SplitResult, urlsplit

from ..errors import ClerkAuthError, ErrorReason
from ..setting_values import issuer_from_publishable_key
from ..settings import ClerkSettings
from ..tokens import verify_token
from ._common import (
    VERIFY_VARIABLES,
    CommandError,
    Commands,
    add_command,
    async_handler,
    fetch_key_set,
    key_set_location,
    load_settings,
    shown,
    unverified_part,
)
from .advice import ADVICE

__all__ = ["cmd_doctor", "register"]

_LOCAL = ("localhost", "127.0.0.1", "::1")


def register(commands: Commands) -> None:
    doctor = add_command(
        commands,
        "doctor",
        async_handler(cmd_doctor),
        help="check the configuration as the app loads it",
        description="Check the Clerk configuration exactly as the app loads it: which dotenv "
        "files are read, the issuer, the key source; fetch the key set and list its keys. "
        "With --token, also say why that token is accepted or refused, and, when its iss "
        "differs from the configured issuer, which one to change. Exits 1 when it finds a "
        "problem.",
        epilog=VERIFY_VARIABLES,
    )
    doctor.add_argument("--token", help="also diagnose this token (its values are untrusted)")


async def cmd_doctor(args: argparse.Namespace, out: TextIO) -> int:
    files = [name for name in (".env", ".env.local") if (Path.cwd() / name).is_file()]
    print(f"dotenv files read: {', '.join(files) or '(none)'} in {Path.cwd()}", file=out)
    settings = load_settings()
    payload = unverified_part(args.token, 1) if args.token else None
    token_iss = payload.get("iss") if payload else None
    problems = _issuer_checks(settings, token_iss, out)
    problems += _other_checks(settings, out)
    problems += await _key_checks(settings, out)
    if args.token:
        problems += await _diagnose_token(args.token, settings, out)
    for problem in problems:
        print(f"problem: {problem}", file=out)
    if problems:
        raise CommandError(f"{len(problems)} problem(s) found; see above")
    print("ok: this configuration verifies Clerk session tokens", file=out)
    return 0


# -- configuration ---------------------------------------------------------------------------


def _issuer_checks(settings: ClerkSettings, token_iss: object, out: TextIO) -> list[str]:
    print(f"issuer:            {shown(settings.issuer or '(not set)')}", file=out)
    if os.environ.get("CLERK_ISSUER", "").endswith("/"):
        print("  note: CLERK_ISSUER has a trailing slash; it is stripped", file=out)
    if settings.issuer is None:
        return []
    parts = urlsplit(settings.issuer)
    host = parts.hostname or ""
    if not _looks_like_frontend_api(host):
        print(
            f"  warning: '{shown(host)}' does not look like a Clerk Frontend API host "
            "(*.clerk.accounts.dev or clerk.<your-domain>)",
            file=out,
        )
    if parts.path and token_iss != settings.issuer:
        return [
            f"CLERK_ISSUER has a path ('{shown(parts.path)}'), but a Clerk iss is the Frontend "
            "API URL alone, so no token can match: drop the path "
            f"(CLERK_ISSUER={shown(f'{parts.scheme}://{parts.netloc}')})"
        ]
    return []


def _looks_like_frontend_api(host: str) -> bool:
    """Development instances live on *.clerk.accounts.dev, production on clerk.<domain>."""
    return host in _LOCAL or host.endswith(".clerk.accounts.dev") or host.startswith("clerk.")


def _other_checks(settings: ClerkSettings, out: TextIO) -> list[str]:
    problems: list[str] = []
    source = settings.key_source_name
    print(f"key source:        {source or '(none)'}", file=out)
    if source is None:
        problems.append(ADVICE[ErrorReason.AUTH_NOT_CONFIGURED])
    if settings.audience is not None:
        print(
            f"  warning: audience '{shown(settings.audience)}' is set; Clerk session tokens "
            "carry no 'aud', so every session token will be rejected",
            file=out,
        )
    parties = [shown(p) for p in settings.authorized_parties]
    print(f"authorized parties: {parties or '(not checked)'}", file=out)
    print(f"secret key:        {'set' if settings.secret_key else '(not set)'}", file=out)
    return problems


async def _key_checks(settings: ClerkSettings, out: TextIO) -> list[str]:
    if settings.key_source_name == "jwt_key":
        print("key set:           static PEM (CLERK_JWT_KEY), no network needed", file=out)
        return []
    if settings.key_source_name is None:
        return []
    url, headers = key_set_location(settings)
    try:
        keys = await fetch_key_set(url, headers, settings.http_timeout)
    except CommandError as error:
        return [f"key set at {url} is not reachable: {error}"]
    if not keys:
        return [f"key set at {url} holds no usable RS256 signing key"]
    kids = ", ".join(shown(kid) for kid in keys)
    print(f"key set:           {url}: {len(keys)} key(s), kid {kids}", file=out)
    return []


# -- a token ---------------------------------------------------------------------------------


async def _diagnose_token(token: str, settings: ClerkSettings, out: TextIO) -> list[str]:
    header, payload = unverified_part(token, 0), unverified_part(token, 1)
    problems: list[str] = []
    if header is None or payload is None:
        print("token (unverified): not a decodable JWT (three base64url JSON parts)", file=out)
    else:
        print(
            f"token (unverified): alg {shown(header.get('alg'))}, kid {shown(header.get('kid'))}, "
            f"iss {shown(payload.get('iss'))}, sub {shown(payload.get('sub'))}",
            file=out,
        )
        problems += _compare_issuer(payload.get("iss"), settings, out)
    try:
        claims = await verify_token(token, settings)
    except ClerkAuthError as error:
        if problems and error.reason is ErrorReason.TOKEN_INVALID_ISSUER:
            return problems  # already explained, with which side to change
        return [
            *problems,
            f"token rejected: {error.reason.value}: {shown(error.message)}; "
            f"fix: {ADVICE[error.reason]}",
        ]
    print(f"token:             valid for {claims.exp - int(time.time())} s more", file=out)
    return problems


def _compare_issuer(iss: object, settings: ClerkSettings, out: TextIO) -> list[str]:
    """Compare the token's (unverified) iss with the configured issuer; say which to change."""
    if not isinstance(iss, str):
        print(
            "  note: the token has no iss string; Clerk session tokens always carry one", file=out
        )
        return []
    if settings.issuer is None:
        print(
            f"  note: CLERK_ISSUER is not set, so iss is not checked; to check it, set "
            f"CLERK_ISSUER={shown(iss)}",
            file=out,
        )
        return []
    if iss == settings.issuer:
        print("  iss matches the configured issuer", file=out)
        return []
    return [_issuer_advice(iss, settings)]


def _issuer_advice(iss: str, settings: ClerkSettings) -> str:
    issuer = settings.issuer or ""
    setting = "CLERK_ISSUER"
    if settings.publishable_key and issuer_from_publishable_key(settings.publishable_key) == issuer:
        setting = "CLERK_ISSUER (now derived from CLERK_PUBLISHABLE_KEY)"
    head = f"token iss '{shown(iss)}' does not match the configured issuer '{shown(issuer)}': "
    mine, theirs = _split(issuer), _split(iss)
    if (theirs.scheme, theirs.netloc) == (mine.scheme, mine.netloc) and not mine.path:
        return head + (
            f"{setting} is right; the token's iss has extra characters ('/' or a path), which "
            "Clerk never writes: fix whatever minted this token"
        )
    if mine.path and iss == f"{mine.scheme}://{mine.netloc}":
        return head + f"drop the path from {setting}: set CLERK_ISSUER={shown(iss)}"
    return head + (
        f"the token comes from another Clerk instance{_kind(theirs.netloc)} than the app "
        f"trusts{_kind(mine.netloc)}. To trust the token's instance, change {setting} to "
        f"{shown(iss)}; if the app is right, the frontend uses another instance's publishable "
        "key: give it the key of the instance at the configured issuer"
    )


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError:  # an unverified iss such as 'https://[' is no URL at all
        return SplitResult("", "", url, "", "")


def _kind(netloc: str) -> str:
    host = netloc.rpartition("@")[2].partition(":")[0].lower()  # no .hostname: it may raise
    if host in _LOCAL or host.startswith("["):
        return ""
    if host.endswith(".clerk.accounts.dev"):
        return " (development)"
    return " (production)" if host.startswith("clerk.") else ""
