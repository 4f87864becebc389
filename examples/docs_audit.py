"""An audit trail in one line per action: every record attributed to the signed-in user."""

from typing import Annotated

from fastapi import Depends, FastAPI

from clerk_deps import CurrentUserDep
from clerk_deps.audit import AuditRecorder, AuditTrail

app = FastAPI()
trail = AuditTrail("logs/audit")  # one file per UTC day: logs/audit/audit_YYYYMMDD.jsonl
AuditDep = Annotated[AuditRecorder, Depends(trail.recorder)]


@app.post("/reports/{report_id}/approve")
async def approve(report_id: str, user: CurrentUserDep, audit: AuditDep) -> dict[str, str]:
    await audit("report.approve", resource=report_id)
    return {"approved": report_id, "by": user.user_id}
