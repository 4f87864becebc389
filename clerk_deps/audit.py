"""An append-only JSONL audit trail of authenticated actions (ALCOA+ attribution).

One file per UTC day (``audit_YYYYMMDD.jsonl``), one complete JSON record per line. Each line
is written with a single ``write`` on a file opened with ``O_APPEND``, so concurrent writers,
threads or processes, never interleave or lose lines. The token is never recorded.

In a FastAPI route, one line records an action attributed to the signed-in user::

    trail = AuditTrail("logs/audit")
    AuditDep = Annotated[AuditRecorder, Depends(trail.recorder)]

    @app.post("/jobs", status_code=201)
    async def create_job(job: JobIn, audit: AuditDep):
        ...
        await audit("job.create", resource=job_id)
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from .claims import ClerkClaims
from .dependencies import CurrentUserDep

__all__ = ["AuditRecorder", "AuditTrail", "encode_line"]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class AuditTrail:
    """Writes audit records under ``directory`` (created on first write).

    ``fsync=True`` flushes every line to disk before returning (slower; for records that
    must survive a power cut). ``clock`` returns an aware UTC datetime (tests inject one).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fsync: bool = False,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self.clock = clock

    def __repr__(self) -> str:
        return f"AuditTrail(directory={str(self.directory)!r}, fsync={self.fsync})"

    def path_for(self, when: datetime) -> Path:
        """The file holding records of the UTC day of ``when``."""
        return self.directory / f"audit_{when.astimezone(timezone.utc):%Y%m%d}.jsonl"

    def build_record(
        self,
        *,
        user: ClerkClaims | None,
        action: str,
        resource: str | None = None,
        outcome: str = "success",
        request_id: str | None = None,
        details: Mapping[str, Any] | None = None,
        when: datetime | None = None,
    ) -> dict[str, Any]:
        """The record as it will be written (a plain dict, JSON-serialisable)."""
        when = (when or self.clock()).astimezone(timezone.utc)
        record: dict[str, Any] = {
            "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "user_id": user.sub if user else None,
            "session_id": user.sid if user else None,
            "token_iat": user.iat if user else None,
            "user_email": user.email if user else None,
            "actor_id": user.act.sub if user and user.act else None,
            "org_id": user.org_id if user else None,
            "action": action,
            "resource": resource,
            "outcome": outcome,
            "request_id": request_id,
            "alcoa_attributable": bool(user and user.sub),
            "alcoa_contemporaneous": True,
        }
        if details:
            record["details"] = dict(details)
        return record

    def write(self, record: Mapping[str, Any]) -> Path:
        """Append one record as one line with a single write; returns the file written.

        Whatever the record holds, it is written as exactly one line of valid JSON (see
        :func:`encode_line`): text that would break a line or cannot be encoded is escaped,
        and a value that is not JSON is written as its type name, never raised.
        """
        path = self.path_for(self._time_of(record))
        line = encode_line(record)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            written = os.write(fd, line)
            if written != len(line):  # pragma: no cover - regular files write fully
                raise OSError(f"short write to {path}: {written} of {len(line)} bytes")
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        return path

    def _time_of(self, record: Mapping[str, Any]) -> datetime:
        stamp = record.get("timestamp")
        if isinstance(stamp, str):
            try:
                when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            except ValueError:
                return self.clock()
            return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
        return self.clock()

    def record(self, **fields: Any) -> dict[str, Any]:
        """Build and write a record (blocking; from async code use :meth:`arecord`)."""
        record = self.build_record(**fields)
        self.write(record)
        return record

    async def arecord(self, **fields: Any) -> dict[str, Any]:
        """Build and write a record without blocking the event loop."""
        record = self.build_record(**fields)
        await run_in_threadpool(self.write, record)
        return record

    async def recorder(self, conn: HTTPConnection, user: CurrentUserDep) -> AuditRecorder:
        """FastAPI dependency: an :class:`AuditRecorder` bound to this request's user."""
        return AuditRecorder(self, user, request_id_of(conn), conn)


class AuditRecorder:
    """Records actions of one request: ``await audit("job.create", resource=job_id)``."""

    def __init__(
        self,
        trail: AuditTrail,
        user: ClerkClaims,
        request_id: str,
        conn: HTTPConnection | None = None,
    ) -> None:
        self.trail = trail
        self.user = user
        self.request_id = request_id
        self._conn = conn

    def _current_user(self) -> ClerkClaims:
        # A route using CurrentUserWithEmailDep leaves the email-enriched claims on the
        # connection by the time it records; prefer those.
        stored = getattr(self._conn.state, "clerk_user", None) if self._conn else None
        return (
            stored if isinstance(stored, ClerkClaims) and stored.sub == self.user.sub else self.user
        )

    async def __call__(
        self,
        action: str,
        *,
        resource: str | None = None,
        outcome: str = "success",
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        return await self.trail.arecord(
            user=self._current_user(),
            action=action,
            resource=resource,
            outcome=outcome,
            request_id=self.request_id,
            details=details,
        )


# Characters str.splitlines() breaks on that json.dumps(ensure_ascii=False) leaves as they are
# (it escapes U+0000-U+001F itself): a reader splitting on them would tear the record.
_LINE_BREAKS = re.compile("[\x85\u2028\u2029]")


def _escape_line_break(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def encode_line(record: Mapping[str, Any]) -> bytes:
    """``record`` as one UTF-8 line of JSON that survives ``str.splitlines()``.

    Non-ASCII text stays readable, except the line separators U+0085, U+2028 and U+2029,
    which are written as ``\\uXXXX`` escapes; text UTF-8 cannot encode (lone surrogates) is
    written as its ``\\udXXX`` escape, which JSON readers decode back to the same string.
    A value JSON cannot represent (an object, a cycle, nesting too deep) becomes a string
    naming its type, so the record is still written.
    """
    try:
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=_unjsonable)
    except (ValueError, TypeError, RecursionError):  # a cycle, a non-string key, deep nesting
        text = json.dumps(
            {str(key): _plain(value) for key, value in record.items()},
            ensure_ascii=False,
            separators=(",", ":"),
        )
    text = _LINE_BREAKS.sub(_escape_line_break, text)
    # Lone surrogates can only sit inside JSON strings; "\udXXX" is their JSON escape.
    return (text + "\n").encode("utf-8", "backslashreplace")


def _unjsonable(value: object) -> str:
    return f"<{type(value).__name__}>"


def _plain(value: object) -> object:
    """``value`` if it is a JSON scalar, else a string naming its type."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return _unjsonable(value)


def request_id_of(conn: HTTPConnection) -> str:
    """The caller's ``X-Request-ID`` when it is a sane identifier, else a new one."""
    supplied = conn.headers.get("x-request-id", "")
    return supplied if _REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex
