from fastapi import Depends, FastAPI, WebSocket

from clerk_deps import CurrentUserDep, accept_websocket, clerk_lifespan, require_origin

app = FastAPI(lifespan=clerk_lifespan)
same_site = require_origin("https://app.example.com", "http://localhost:3000")


@app.websocket("/ws", dependencies=[Depends(same_site)])
async def notifications(websocket: WebSocket, user: CurrentUserDep) -> None:
    await accept_websocket(websocket)  # echoes the "clerk" subprotocol when the browser offers it
    await websocket.send_json({"hello": user.sub})
    async for text in websocket.iter_text():
        await websocket.send_json({"from": user.sub, "text": text})
