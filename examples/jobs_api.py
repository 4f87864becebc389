"""A small jobs API protected by Clerk sessions: the app the demo and the integration tests run.

    CLERK_ISSUER=https://your-app.clerk.accounts.dev uvicorn examples.jobs_api:app

Every job is attributed to the signed-in user and written to the audit trail
(``logs/audit/jobs/audit_YYYYMMDD.jsonl``). With ``CLERK_SECRET_KEY`` set, the user's email is
looked up when the session token has none.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field

from clerk_deps import ClerkWebhookDep, CurrentUserDep, CurrentUserWithEmailDep, clerk_lifespan
from clerk_deps.audit import AuditRecorder, AuditTrail

app = FastAPI(title="Jobs API (clerk_deps example)", lifespan=clerk_lifespan)
audit_trail = AuditTrail("logs/audit/jobs")
AuditDep = Annotated[AuditRecorder, Depends(audit_trail.recorder)]


class JobRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)


@app.get("/health")
async def health() -> dict[str, str]:
    """Public: no token needed."""
    return {"status": "ok"}


@app.get("/me")
async def me(user: CurrentUserDep) -> dict[str, Any]:
    """Who the token says you are."""
    return {"user_id": user.user_id, "session_id": user.session_id, "email": user.email}


@app.post("/jobs", status_code=201)
async def create_job(
    job: JobRequest, user: CurrentUserWithEmailDep, audit: AuditDep
) -> dict[str, Any]:
    """Create a job attributed to the signed-in user, and record it in the audit trail."""
    job_id = f"job_{uuid.uuid4().hex[:16]}"
    await audit("job.create", resource=job_id, details={"name": job.name})
    return {
        "job_id": job_id,
        "name": job.name,
        "status": "pending",
        "created_by": user.user_id,
        "created_by_email": user.email,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    }


@app.post("/webhooks/clerk")
async def clerk_webhook(event: ClerkWebhookDep) -> dict[str, Any]:
    """Clerk's webhooks, verified. With CLERK_REVOCATION=webhooks, an ending session is
    refused everywhere from here on without further code."""
    return {"received": event.type, "redelivered": event.redelivered}
