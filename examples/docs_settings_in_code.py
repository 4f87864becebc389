"""Settings in code (docs/configuration.md): keyword arguments win, the environment fills the rest.

    CLERK_ISSUER=https://your-app.clerk.accounts.dev uvicorn examples.docs_settings_in_code:app
"""

from functools import lru_cache
from typing import Any

from fastapi import FastAPI

from clerk_deps import ClerkSettings, CurrentUserDep, get_settings


@lru_cache(maxsize=1)
def clerk_settings() -> ClerkSettings:
    # Built on the first request, not at import. Keywords beat environment variables and
    # dotenv files; CLERK_ISSUER (or CLERK_PUBLISHABLE_KEY, CLERK_JWT_KEY, ...) still come
    # from the environment.
    return ClerkSettings(
        authorized_parties=["https://app.example.com", "http://localhost:3000"],
        leeway=2,
    )


app = FastAPI()
app.dependency_overrides[get_settings] = clerk_settings


@app.get("/me")
async def me(user: CurrentUserDep) -> dict[str, Any]:
    return {"user_id": user.user_id, "origin": user.azp}
