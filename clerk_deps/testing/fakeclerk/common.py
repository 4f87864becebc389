"""What every FakeClerk resource shares: Clerk's error bodies, ids, JSON bodies and routes."""

from __future__ import annotations

import json
import secrets
import string
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MIN_TOKEN_SECONDS = 30
MAX_TOKEN_SECONDS = 315_360_000
_ID_ALPHABET = string.ascii_letters + string.digits


class FakeClerkError(Exception):
    """A Backend API error: HTTP ``status_code`` and Clerk's ``code``/``message``/``long_message``.

    Raised by the Python methods of :class:`FakeClerk` and sent as Clerk's error body by its
    HTTP endpoints, so both report the same thing.
    """

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        long_message: str,
        *,
        meta: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status_code} {code}: {long_message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.long_message = long_message
        self.meta = dict(meta or {})
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body Clerk sends for this error."""
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "long_message": self.long_message,
        }
        if self.meta:
            error["meta"] = self.meta
        return {"errors": [error], "clerk_trace_id": uuid.uuid4().hex}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status_code, headers=self.headers)


def not_found(what: str, identifier: str) -> FakeClerkError:
    return FakeClerkError(
        404, "resource_not_found", "not found", f"No {what} was found with id {identifier}"
    )


def invalid_param(
    name: str, long_message: str, code: str = "form_param_value_invalid"
) -> FakeClerkError:
    return FakeClerkError(422, code, "is invalid", long_message, meta={"param_name": name})


def body_invalid() -> FakeClerkError:
    return FakeClerkError(
        400,
        "request_body_invalid",
        "Request body invalid",
        "The request body is invalid. Please consult the API documentation for more information.",
    )


def header_invalid() -> FakeClerkError:
    return FakeClerkError(
        401,
        "authorization_header_format_invalid",
        "Invalid Authorization header format",
        "Invalid Authorization header format. Must be 'Bearer <YOUR_API_KEY>'",
    )


def key_invalid() -> FakeClerkError:
    return FakeClerkError(
        401,
        "clerk_key_invalid",
        "Secret Key is invalid",
        "The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is "
        "correct.",
    )


def new_id(prefix: str) -> str:
    return f"{prefix}_{''.join(secrets.choice(_ID_ALPHABET) for _ in range(27))}"


def checked_lifetime(value: object, name: str = "expires_in_seconds") -> int:
    """``value`` if it is an integer from 30 to 315360000 seconds, else a 422 error."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_param(
            name, f"{name} must be an integer number of seconds", "form_param_format_invalid"
        )
    if not MIN_TOKEN_SECONDS <= value <= MAX_TOKEN_SECONDS:
        raise invalid_param(
            name, f"{name} must be between {MIN_TOKEN_SECONDS} and {MAX_TOKEN_SECONDS}"
        )
    return value


def json_route(path: str, method: str, handler: Callable[[Request], Awaitable[Any]]) -> Route:
    """A route answering ``handler``'s result as JSON, or Clerk's body for a FakeClerkError."""

    async def endpoint(request: Request) -> Response:
        try:
            return JSONResponse(await handler(request))
        except FakeClerkError as error:
            return error.response()

    return Route(path, endpoint, methods=[method])


async def json_body(request: Request) -> dict[str, Any]:
    """The JSON object in the body; an empty body is ``{}``, anything else a 400."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise body_invalid() from None
    if not isinstance(body, dict):
        raise body_invalid()
    return body


async def read_expires_in_seconds(request: Request) -> int | None:
    value = (await json_body(request)).get("expires_in_seconds")
    return None if value is None else checked_lifetime(value)
