"""Interop target: a payment endpoint on FastAPI (Starlette) served by uvicorn, default settings.

Written the way the FastAPI docs write a WebSocket endpoint (`@app.websocket("/ws")`,
`websocket.receive_text()` in a `while True` loop, `WebSocketDisconnect` caught as in "Handling
disconnections"), authenticating with the upgrade request's `Authorization: Bearer <token>`
header: a missing or wrong header gets `await websocket.close(code=status.WS_1008_POLICY_VIOLATION)`
before `accept()` (which uvicorn answers with an HTTP 403). Each text message is parsed with
`json.loads` with no error handling of its own (whatever uvicorn does with an exception in the
endpoint is the behaviour under test).

uvicorn is started programmatically with every WebSocket option at its default (`ws="auto"`,
which picks the `websockets-sansio` implementation on `websockets` 17.4; `ws_max_size` 16 MiB,
`ws_ping_interval` 20, `ws_ping_timeout` 20, `ws_per_message_deflate` on). The only change to
uvicorn's configuration: its access log goes to stderr like its other logs (uvicorn's default
writes it to stdout), so that stdout carries exactly one line, `PORT <n>`.

usage: INTEROP_TOKEN=secret python3 server.py   -> prints "PORT <n>", serves ws://127.0.0.1:<n>/ws
       (with "Authorization: Bearer secret" on the upgrade request); PORT=<n> listens on <n>
"""
import asyncio
import copy
import json
import os

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect, status

TOKEN = os.environ["INTEROP_TOKEN"]

app = FastAPI()


@app.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket):
    authorization = websocket.headers.get("authorization")
    if authorization != f"Bearer {TOKEN}":
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
        return
    await websocket.accept()
    try:
        while True:
            data = json.loads(await websocket.receive_text())
            if data["type"] == "payment":
                await websocket.send_json({"type": "ack", "reference": data["reference"]})
            else:
                await websocket.send_json({"type": "error", "reason": "unknown type"})
    except WebSocketDisconnect:
        pass


async def main():
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config = uvicorn.Config(app, host="127.0.0.1", port=int(os.environ.get("PORT") or 0),
                            log_config=log_config)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():  # failed to start (port in use, ...): its exception, or exit
            await serving
            raise SystemExit(1)
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    await serving


if __name__ == "__main__":
    asyncio.run(main())
