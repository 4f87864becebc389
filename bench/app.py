"""The end-to-end bench app: two routes that differ only in authentication.

Run by ``loadtest.py`` under uvicorn with ``CLERK_JWT_KEY`` and ``CLERK_ISSUER`` in its
environment (no network for keys), from an empty working directory (no dotenv files).
Both routes return the same body, so the difference in throughput is the cost of
``CurrentUserDep`` alone (including FastAPI resolving ``get_settings``).
"""

from __future__ import annotations

from fastapi import FastAPI

from clerk_deps import CurrentUserDep, clerk_lifespan

app = FastAPI(lifespan=clerk_lifespan, openapi_url=None)


@app.get("/public")
async def public() -> dict[str, bool]:
    return {"ok": True}


@app.get("/protected")
async def protected(user: CurrentUserDep) -> dict[str, bool]:
    return {"ok": True}
