from typing import Annotated

from fastapi import Depends, FastAPI

from clerk_deps import (
    ClerkClaims,
    MachineAuth,
    MachineAuthDep,
    require_clerk_auth,
    require_machine,
)

app = FastAPI()


# Any machine token: an M2M token, an OAuth access token or an API key.
@app.get("/whoami")
async def whoami(machine: MachineAuthDep):
    return {"type": machine.token_type, "subject": machine.subject}


# Customers' API keys only, and only those created with the "invoices:read" scope.
InvoiceReader = Annotated[
    MachineAuth, Depends(require_machine("api_key", scopes=["invoices:read"]))
]


@app.get("/invoices")
async def invoices(key: InvoiceReader):
    return {"owner": key.org_id or key.user_id, "invoices": []}


# Your own services, calling each other with M2M tokens.
@app.post("/jobs/sync", dependencies=[Depends(require_machine("m2m_token"))])
async def sync():
    return {"started": True}


# The browser (session token) and scripts (API keys) on the same route.
SessionOrKey = Annotated[
    ClerkClaims | MachineAuth, Depends(require_clerk_auth(["session_token", "api_key"]))
]


@app.get("/projects")
async def projects(caller: SessionOrKey):
    if isinstance(caller, ClerkClaims):
        return {"user": caller.sub}
    return {"api_key": caller.name, "owner": caller.subject}
