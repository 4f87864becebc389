"""What every subcommand shares: registration, settings, token input, safe printing, HTTP
helpers (the key set included)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import unicodedata
from collections.abc import Callable, Coroutine
from typing import Any, TextIO, TypeAlias

import httpx
from jose.backends.base import Key
from pydantic import ValidationError

from ..backend_api import ClerkAPIError, ClerkBackendAPI
from ..key_set import parse_key_set
from ..setting_values import describe_validation_error
from ..settings import ClerkSettings

Handler = Callable[[argparse.Namespace, TextIO], int]
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``register(commands)`` receives: the ``clerk-deps`` parser's subcommands."""

# What each group of commands reads, for --help (the same wording everywhere).
VERIFY_VARIABLES = (
    "Reads CLERK_ISSUER or CLERK_PUBLISHABLE_KEY (or CLERK_JWT_KEY, CLERK_JWKS_URL, "
    "CLERK_SECRET_KEY for the keys), plus the optional checks (CLERK_AUTHORIZED_PARTIES, "
    "CLERK_JWT_AUDIENCE, CLERK_LEEWAY, ...), from the environment, .env.local and .env in the "
    "working directory, exactly as the app does."
)
BACKEND_VARIABLES = (
    "Needs CLERK_SECRET_KEY (the Backend API key, sk_...) and, for the local emulator, "
    "CLERK_API_URL; read from the environment, .env.local and .env in the working directory."
)

_MAX_SHOWN = 200  # characters of one unverified value shown before it is cut


class CommandError(Exception):
    """A failure reported as one line on stderr with exit status 1."""


def add_command(
    commands: Commands, name: str, handler: Handler, *, help: str, description: str, epilog: str
) -> argparse.ArgumentParser:
    """Add subcommand ``name``, run by ``handler``; returns its parser, for its arguments.

    Every subcommand has a one-line ``help``, a ``description`` and, as ``epilog``, what it
    reads from the environment.
    """
    parser = commands.add_parser(name, help=help, description=description, epilog=epilog)
    parser.set_defaults(handler=handler)
    return parser


def async_handler(
    command: Callable[[argparse.Namespace, TextIO], Coroutine[Any, Any, int]],
) -> Handler:
    """A subcommand written as a coroutine, run to completion in its own event loop."""

    def run(args: argparse.Namespace, out: TextIO) -> int:
        return asyncio.run(command(args, out))

    return run


def load_settings() -> ClerkSettings:
    try:
        return ClerkSettings()
    except ValidationError as error:
        raise CommandError(f"settings are invalid: {describe_validation_error(error)}") from None


def read_token(value: str | None, stdin: TextIO) -> str:
    token = (stdin.read() if value in (None, "-") else value or "").strip()
    if not token:
        raise CommandError("no token given: pass it as an argument or on stdin ('-')")
    return token


def unverified_part(token: str, index: int) -> dict[str, Any] | None:
    """A decoded JWT part for diagnosis only; nothing here is trusted.

    ``None`` when the part is missing, not base64url JSON, not an object, or nested too deeply
    for Python's parser (a hostile token must give a verdict, not a traceback).
    """
    try:
        segment = token.split(".")[index]
        decoded = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError, RecursionError):
        return None
    return decoded if isinstance(decoded, dict) else None


def shown(value: object) -> str:
    """``value`` made safe for a terminal: control and invisible characters escaped.

    Values read from an unverified token (and messages quoting them) may hold terminal escape
    sequences, bidirectional overrides or line separators; each such character is printed as
    ``\\xNN`` / ``\\uNNNN``, backslashes are doubled, long values are cut, and anything that is
    not a string or a number is named by its JSON type rather than printed.
    """
    if value is None:
        return "(none)"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return {dict: "(an object)", list: "(a list)", bool: str(value).lower()}.get(
            type(value), "(a value)"
        )
    text = str(value)
    cut = len(text) > _MAX_SHOWN
    escaped = "".join(_escaped_char(c) for c in text[:_MAX_SHOWN])
    return escaped + ("... (cut)" if cut else "")


def _escaped_char(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def backend_api(settings: ClerkSettings) -> ClerkBackendAPI:
    try:
        return ClerkBackendAPI.from_settings(settings)
    except ClerkAPIError as error:
        raise CommandError(error.message) from None


async def http_request(
    method: str, url: str, *, headers: dict[str, str], timeout: float, body: Any = None
) -> httpx.Response:
    """One HTTP call (``body``, when not ``None``, sent as JSON); a transport failure is a
    :class:`CommandError` naming ``url`` and the type of the failure."""
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            return await client.request(method, url, headers=headers, json=body)
    except httpx.HTTPError as error:
        raise CommandError(f"{url}: {type(error).__name__}") from None


async def fetch_json(url: str, headers: dict[str, str], timeout: float) -> Any:
    response = await http_request("GET", url, headers=headers, timeout=timeout)
    if response.status_code != 200:
        raise CommandError(f"{url} answered HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise CommandError(f"{url} did not answer JSON") from None


async def fetch_key_set(url: str, headers: dict[str, str], timeout: float) -> dict[str, Key]:
    """The RS256 signing keys of the key set at ``url``, by ``kid``."""
    return parse_key_set(await fetch_json(url, headers, timeout))


def key_set_location(settings: ClerkSettings) -> tuple[str, dict[str, str]]:
    if settings.jwks_url:
        return settings.jwks_url, {}
    if settings.secret_key is not None:
        secret = settings.secret_key.get_secret_value()
        return f"{settings.api_url}/v1/jwks", {"Authorization": f"Bearer {secret}"}
    raise CommandError("no key set URL: pass --url, or set CLERK_ISSUER or CLERK_SECRET_KEY")


def print_json(value: Any, out: TextIO) -> None:
    # ensure_ascii escapes every control character, so claims cannot drive the terminal.
    print(json.dumps(value, indent=2, sort_keys=True, default=str), file=out)
