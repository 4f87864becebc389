"""``clerk-deps token`` and ``clerk-deps call``: mint session tokens through the Backend API."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from ..backend_api import ClerkAPIError, ClerkBackendAPI
from ..settings import ClerkSettings
from ._common import (
    BACKEND_VARIABLES,
    CommandError,
    Commands,
    add_command,
    async_handler,
    backend_api,
    http_request,
    load_settings,
    shown,
)

__all__ = ["cmd_call", "cmd_token", "mint_token", "register"]


def register(commands: Commands) -> None:
    token = add_command(
        commands,
        "token",
        async_handler(cmd_token),
        help="mint a session token (or create an API key or M2M token)",
        description="Create a session for USER_ID and mint a session token through the "
        "Backend API (Clerk allows this on development instances); print only the token, so "
        'it composes: curl -H "Authorization: Bearer $(clerk-deps token USER_ID)" URL. '
        "An unknown user is 'no such user' (exit 1). --type api_key OWNER creates an API key "
        "for a user or organization and prints its secret; --type m2m_token creates an M2M "
        "token (both also against the emulator).",
        epilog=BACKEND_VARIABLES,
    )
    token.add_argument(
        "user_id",
        nargs="?",
        help="the Clerk user id (user_...); with --type api_key, the user_... or org_... owner",
    )
    token.add_argument("--template", help="mint a JWT-template token instead")
    token.add_argument("--expires-in", type=int, help="token lifetime in seconds (30..)")
    token.add_argument(
        "--type",
        choices=["session_token", "api_key", "m2m_token"],
        default="session_token",
        help="api_key: create an API key (prints its secret); m2m_token: create an M2M token "
        "with CLERK_MACHINE_SECRET_KEY (or CLERK_SECRET_KEY)",
    )
    token.add_argument(
        "--scope", action="append", default=[], help="a scope of the API key or M2M token"
    )
    token.add_argument("--name", default="clerk-deps", help="the API key's name")

    call = add_command(
        commands,
        "call",
        async_handler(cmd_call),
        help="mint a token and call URL with it at once",
        description="Mint a session token for --user and call URL with it at once, so it "
        "cannot expire in between; print the status and the body. Exits 1 on a 4xx or 5xx.",
        epilog=BACKEND_VARIABLES,
    )
    call.add_argument("url")
    call.add_argument("--user", required=True, help="the Clerk user id to act as")
    call.add_argument("--method", default="GET")
    call.add_argument("--data", help="JSON request body")
    call.add_argument("--template", help="use a JWT-template token")


async def mint_token(
    settings: ClerkSettings, user_id: str, template: str | None, expires_in: int | None
) -> str:
    """Create a session for ``user_id`` and mint its token; unknown users are named as such."""
    api = backend_api(settings)
    try:
        session = await api.create_session(user_id)
    except ClerkAPIError as error:
        if error.status_code is not None and 400 <= error.status_code < 500:
            await _refuse_unknown_user(settings, user_id)
        raise CommandError(str(error)) from None
    try:
        return await api.create_session_token(session["id"], template, expires_in)
    except ClerkAPIError as error:
        raise CommandError(str(error)) from None


async def _refuse_unknown_user(settings: ClerkSettings, user_id: str) -> None:
    try:
        await backend_api(settings).get_user(user_id)
    except ClerkAPIError as error:
        if error.status_code == 404:
            raise CommandError(
                f"no such user '{shown(user_id)}' in the Clerk instance at {settings.api_url} "
                "(check the id, user_..., and that CLERK_SECRET_KEY is this instance's key)"
            ) from None


async def cmd_token(args: argparse.Namespace, out: TextIO) -> int:
    settings = load_settings()
    if args.type != "session_token":
        print(await _create_machine_token(settings, args), file=out)
        return 0
    if not args.user_id:
        raise CommandError("a session token needs USER_ID (user_...)")
    print(await mint_token(settings, args.user_id, args.template, args.expires_in), file=out)
    return 0


async def _create_machine_token(settings: ClerkSettings, args: argparse.Namespace) -> str:
    """An API key (for the USER_ID argument, its owner) or an M2M token (machine secret key)."""
    fields: dict[str, Any] = {}
    if args.expires_in is not None:
        fields["seconds_until_expiration"] = args.expires_in
    try:
        if args.type == "api_key":
            if not args.user_id:
                raise CommandError("an API key needs SUBJECT: the user_... or org_... it acts for")
            api = backend_api(settings)
            created = await api.create_api_key(args.user_id, args.name, args.scope, **fields)
            return str(created["secret"])
        key = settings.machine_secret_key or settings.secret_key
        if key is None:
            raise CommandError("an M2M token needs CLERK_MACHINE_SECRET_KEY (or CLERK_SECRET_KEY)")
        api = ClerkBackendAPI(key, api_url=settings.api_url, timeout=settings.http_timeout)
        created = await api.create_m2m_token(scopes=args.scope, **fields)
        return str(created["token"])
    except (ClerkAPIError, KeyError) as error:
        raise CommandError(f"could not create the {args.type}: {error}") from None


async def cmd_call(args: argparse.Namespace, out: TextIO) -> int:
    settings = load_settings()
    try:
        body = json.loads(args.data) if args.data is not None else None
    except ValueError:
        raise CommandError("--data is not valid JSON") from None
    token = await mint_token(settings, args.user, args.template, None)
    response = await http_request(
        args.method.upper(),
        args.url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=settings.http_timeout,
        body=body,
    )
    print(f"HTTP {response.status_code}", file=out)
    print(response.text, file=out)
    if response.is_error:
        raise CommandError(f"{args.method.upper()} {args.url} answered HTTP {response.status_code}")
    return 0
