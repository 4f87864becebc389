"""Typed Clerk webhook events: the envelope, and views of the session and user objects."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .backend_api import primary_email_address

__all__ = ["ClerkWebhookEvent", "WebhookSession", "WebhookUser"]

_Data = TypeVar("_Data", bound=BaseModel)


class WebhookSession(BaseModel):
    """The session object of a ``session.*`` event (other fields are kept as extras)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    id: str
    user_id: str | None = None
    status: str | None = None
    client_id: str | None = None
    expire_at: int | None = None
    abandon_at: int | None = None
    last_active_at: int | None = None
    created_at: int | None = None
    updated_at: int | None = None


class WebhookUser(BaseModel):
    """The user object of a ``user.*`` event; ``user.deleted`` carries only ``id`` and
    ``deleted=True``."""

    model_config = ConfigDict(frozen=True, extra="allow")

    id: str
    deleted: bool = False
    banned: bool = False
    locked: bool = False
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    external_id: str | None = None
    image_url: str | None = None
    primary_email_address_id: str | None = None
    email_addresses: list[dict[str, Any]] = []
    public_metadata: dict[str, Any] = {}
    created_at: int | None = None
    updated_at: int | None = None

    @property
    def primary_email_address(self) -> str | None:
        """The address of ``primary_email_address_id``, or ``None``."""
        return primary_email_address(
            {
                "primary_email_address_id": self.primary_email_address_id,
                "email_addresses": self.email_addresses,
            }
        )


class ClerkWebhookEvent(BaseModel):
    """A verified Clerk webhook delivery.

    ``id`` is the ``svix-id`` (the same on every retry of one delivery), ``type`` the event
    type (``user.created``, ``session.revoked``, ...), ``data`` the object as Clerk sent it,
    ``timestamp`` Clerk's event time in milliseconds, ``signed_at`` the delivery's
    ``svix-timestamp`` in seconds, and ``redelivered`` whether this ``id`` was accepted before:
    a handler that has already done its work answers 2xx again and does nothing.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    type: str
    data: dict[str, Any]
    object: str = "event"
    timestamp: int | None = None
    instance_id: str | None = None
    signed_at: int
    redelivered: bool = False

    @classmethod
    def from_envelope(
        cls, msg_id: str, signed_at: int, envelope: dict[str, Any]
    ) -> ClerkWebhookEvent:
        """The event in a verified envelope; optional fields of an unexpected type are dropped."""
        timestamp = envelope.get("timestamp")
        instance_id = envelope.get("instance_id")
        kind = envelope.get("object")
        return cls(
            id=msg_id,
            type=envelope["type"],
            data=envelope["data"],
            object=kind if isinstance(kind, str) else "event",
            timestamp=timestamp if type(timestamp) is int else None,
            instance_id=instance_id if isinstance(instance_id, str) else None,
            signed_at=signed_at,
        )

    @property
    def session(self) -> WebhookSession | None:
        """The session of a ``session.*`` event; ``None`` for other events."""
        return _data_as(self, "session.", WebhookSession)

    @property
    def user(self) -> WebhookUser | None:
        """The user of a ``user.*`` event; ``None`` for other events."""
        return _data_as(self, "user.", WebhookUser)


def _data_as(event: ClerkWebhookEvent, prefix: str, model: type[_Data]) -> _Data | None:
    """``event.data`` read as ``model`` when the event type starts with ``prefix``, else
    ``None`` (also ``None`` when the data does not fit the model)."""
    if not event.type.startswith(prefix):
        return None
    try:
        return model.model_validate(event.data)
    except ValidationError:
        return None
