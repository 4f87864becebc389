"""Several Clerk instances (docs/configuration.md): production and staging tokens on one API.

    PROD_CLERK_PUBLISHABLE_KEY=pk_live_... STAGING_CLERK_PUBLISHABLE_KEY=pk_test_... \\
        uvicorn app:app
"""

import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from clerk_deps import ClerkAuth, ClerkClaims, ClerkSettings

# Each instance's own values are given in code: a CLERK_* variable in the environment would
# apply to every instance alike.
clerk = ClerkAuth(
    [
        ClerkSettings(
            publishable_key=os.environ["PROD_CLERK_PUBLISHABLE_KEY"],
            authorized_parties=["https://app.example.com"],
        ),
        ClerkSettings(
            publishable_key=os.environ["STAGING_CLERK_PUBLISHABLE_KEY"],
            authorized_parties=["https://staging.example.com"],
        ),
    ]
)
app = FastAPI(lifespan=clerk.lifespan)  # loads both key sets at start-up


@app.get("/me")
async def me(user: Annotated[ClerkClaims, Depends(clerk.user)]) -> dict[str, Any]:
    # iss tells which instance signed the user in
    return {"user_id": user.user_id, "instance": user.iss}
