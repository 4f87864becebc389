"""Keep your own user table in sync with Clerk through its webhooks."""

from typing import Any

from fastapi import FastAPI

from clerk_deps import ClerkWebhookDep

app = FastAPI()
users: dict[str, dict[str, Any]] = {}  # stands for your database table


@app.post("/webhooks/clerk")
async def clerk_webhook(event: ClerkWebhookDep) -> dict[str, str]:
    user = event.user
    if user is None:
        return {"status": "ignored"}  # not a user.* event
    if event.type == "user.deleted":
        users.pop(user.id, None)
    else:  # user.created, user.updated: an upsert is safe to run twice
        users[user.id] = {"email": user.primary_email_address, "banned": user.banned}
    return {"status": "ok"}
