from typing import Annotated

from fastapi import Depends, FastAPI

from clerk_deps import (
    AUTH_RESPONSES,
    ClerkAuthError,
    ClerkClaims,
    clerk_error_handler,
    require_reverification,
)

app = FastAPI(responses=AUTH_RESPONSES)
app.add_exception_handler(ClerkAuthError, clerk_error_handler)


@app.post("/payouts")
async def payout(user: Annotated[ClerkClaims, Depends(require_reverification("strict"))]):
    return {"paid_by": user.sub}


@app.post("/api-keys", dependencies=[Depends(require_reverification("strict_mfa"))])
async def create_api_key():
    return {"created": True}


@app.post(
    "/email",
    dependencies=[Depends(require_reverification(level="first_factor", after_minutes=30))],
)
async def change_email():
    return {"changed": True}
