"""A small jobs API protected by Clerk sessions: the app the demo and the integration tests run.

    CLERK_ISSUER=https://your-app.clerk.accounts.dev uvicorn examples.jobs_api:app
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from clerk_deps import CurrentUserDep, clerk_lifespan

app = FastAPI(title="Jobs API (clerk_deps example)", lifespan=clerk_lifespan)


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
async def create_job(job: JobRequest, user: CurrentUserDep) -> dict[str, Any]:
    """Create a job attributed to the signed-in user."""
    return {
        "job_id": f"job_{uuid.uuid4().hex[:16]}",
        "name": job.name,
        "status": "pending",
        "created_by": user.user_id,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    }
