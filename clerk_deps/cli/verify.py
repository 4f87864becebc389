"""``clerk-deps verify`` and ``clerk-deps jwks-to-pem``: check tokens and keys like the app."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from ..errors import ClerkAuthError
from ..machine_auth import authenticate
from ..machine_tokens import MachineAuth
from ._common import (
    VERIFY_VARIABLES,
    CommandError,
    Commands,
    add_command,
    async_handler,
    fetch_key_set,
    key_set_location,
    load_settings,
    print_json,
    read_token,
    shown,
)
from .advice import ADVICE

__all__ = ["cmd_jwks_to_pem", "cmd_verify", "register"]


def register(commands: Commands) -> None:
    verify = add_command(
        commands,
        "verify",
        async_handler(cmd_verify),
        help="verify a token like the app does",
        description="Verify a token exactly as the app does and print its claims: a session "
        "token, or a machine token (API key, M2M or OAuth token, whose type is printed "
        "first); on "
        "refusal, print the reason code, the message and how to fix it (exit 1). Read the "
        "token from stdin ('-', the default) to keep it out of shell history.",
        epilog=VERIFY_VARIABLES,
    )
    verify.add_argument("token", nargs="?", help="the token, or - (default) to read stdin")

    pem = add_command(
        commands,
        "jwks-to-pem",
        async_handler(cmd_jwks_to_pem),
        help="print PEM public keys from a key set",
        description="Fetch a key set and print each RS256 key as PEM, after a '# kid: ...' "
        "line, ready for CLERK_JWT_KEY (networkless verification).",
        epilog="Without --url, the key set comes from the settings: CLERK_JWKS_URL, "
        "CLERK_ISSUER's /.well-known/jwks.json (or CLERK_PUBLISHABLE_KEY's), or the Backend "
        "API's /v1/jwks with CLERK_SECRET_KEY (and CLERK_API_URL). With --url, no variable is "
        "needed.",
    )
    pem.add_argument("--url", help="key set URL (default: from the settings)")
    pem.add_argument("--kid", help="only the key with this kid")


async def cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    token = read_token(args.token, sys.stdin)
    settings = load_settings()
    try:
        verified = await authenticate(token, settings, accepts="any")
    except ClerkAuthError as error:
        print(f"rejected: {error.reason.value}\n{shown(error.message)}", file=out)
        print(f"fix: {ADVICE[error.reason]}", file=out)
        raise CommandError(f"token rejected ({error.reason.value})") from None
    if isinstance(verified, MachineAuth):
        print(f"type: {verified.token_type.value}", file=out)
        print_json(verified.model_dump(mode="json", exclude_none=True), out)
        expires = verified.expires_at
        left = "no expiry" if expires is None else f"{expires - time.time():.0f} s left"
        print(f"valid: {left}", file=out)
        return 0
    print_json(verified.model_dump(exclude_none=True), out)
    print(f"valid: {verified.exp - int(time.time())} s left", file=out)
    return 0


async def cmd_jwks_to_pem(args: argparse.Namespace, out: TextIO) -> int:
    headers: dict[str, str] = {}
    if args.url:
        url, timeout = args.url, 5.0
    else:
        settings = load_settings()
        url, headers = key_set_location(settings)
        timeout = settings.http_timeout
    keys = await fetch_key_set(url, headers, timeout)
    if args.kid:
        keys = {kid: key for kid, key in keys.items() if kid == args.kid}
    if not keys:
        wanted = f"with kid '{shown(args.kid)}' " if args.kid else ""
        raise CommandError(f"no RS256 signing key {wanted}in the key set at {shown(url)}")
    for kid, key in keys.items():
        pem = key.to_pem().decode()
        print(f"# kid: {shown(kid)}\n{pem.strip()}", file=out)
    return 0
