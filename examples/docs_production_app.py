"""A production-shaped app (docs/deployment.md): keys loaded at start-up, a public health
check, Clerk's error bodies, and the library's log records routed like any other logger.

    CLERK_ISSUER=https://your-app.clerk.accounts.dev \
        uvicorn app:app --workers 4 --proxy-headers
"""

import logging
from typing import Any

from fastapi import FastAPI

from clerk_deps import ClerkAuthError, CurrentUserDep, clerk_error_handler, clerk_lifespan

# clerk_deps logs under the "clerk_deps" logger: a warning when signing keys cannot be
# loaded or refreshed (with the cause), never a token, a signature or a secret.
logging.getLogger("clerk_deps").setLevel(logging.INFO)

# The lifespan fetches the signing keys before the first request; a configuration error
# stops start-up, an unreachable key server only logs a warning.
app = FastAPI(lifespan=clerk_lifespan)
app.add_exception_handler(ClerkAuthError, clerk_error_handler)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Public: load balancer probes need no token and never touch Clerk."""
    return {"status": "ok"}


@app.get("/me")
async def me(user: CurrentUserDep) -> dict[str, Any]:
    return {"user_id": user.user_id, "session_id": user.session_id}
