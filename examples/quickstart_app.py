from fastapi import FastAPI

from clerk_deps import CurrentUserDep, clerk_lifespan

app = FastAPI(lifespan=clerk_lifespan)  # loads Clerk's signing keys at start-up


@app.get("/me")
async def me(user: CurrentUserDep):
    return {"user_id": user.sub, "email": user.email}
