from fastapi import Depends, FastAPI

from clerk_deps import AUTH_RESPONSES, require_feature, require_plan

app = FastAPI(responses=AUTH_RESPONSES)


@app.get("/reports", dependencies=[Depends(require_feature("o:reports"))])
async def reports():
    return {"reports": []}


@app.get("/priority-support", dependencies=[Depends(require_plan("pro"))])
async def priority_support():
    return {"queue": "priority"}
