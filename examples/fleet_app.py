"""One worker of a fleet: run as many as you like with the same environment.

CLERK_REVOCATION=webhooks and CLERK_REDIS_URL=redis://... make a session that Clerk ends
(reported to any one worker's webhook endpoint) refused by every worker at once.
"""

from fastapi import FastAPI

from clerk_deps import ClerkWebhookDep, CurrentUserDep, MachineAuthDep, clerk_lifespan

app = FastAPI(lifespan=clerk_lifespan)


@app.get("/me")
async def me(user: CurrentUserDep) -> dict[str, str | None]:
    return {"user_id": user.sub, "session_id": user.sid}


@app.get("/machine")
async def machine(caller: MachineAuthDep) -> dict[str, str]:
    # an API key or M2M token verified by one worker is not verified again by the others
    return {"subject": caller.subject}


@app.post("/webhooks/clerk")
async def clerk_webhook(event: ClerkWebhookDep) -> dict[str, str]:
    # Ending events (session.revoked, session.ended, session.removed, user.deleted, and the
    # user.updated of a banned user) are on every worker's revocation list by now: nothing
    # to do here for them.
    return {"received": event.type}
