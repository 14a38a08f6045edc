"""Interop target: a payment endpoint on Python `websockets` (new asyncio API), default settings.

Written the way the websockets docs and tutorial write a handler: the first message is the
authentication (`{"type":"auth","token":...}`), then one JSON message per payment, parsed
with `json.loads` and no error handling of its own (whatever websockets does with an exception
in a handler is the behaviour under test). Every `serve()` option is left at its default
(max_size, ping_interval, ping_timeout, compression, origins, ...).

usage: INTEROP_TOKEN=secret python3 server.py   -> prints "PORT <n>", serves ws://127.0.0.1:<n>/ws
(websockets has no routing of its own: every path reaches the handler; clients use /ws.)
"""
import asyncio
import json
import os

from websockets.asyncio.server import serve

TOKEN = os.environ["INTEROP_TOKEN"]


async def handler(websocket):
    # Authentication: the first message.
    message = await websocket.recv()
    event = json.loads(message)
    if event.get("type") != "auth" or event.get("token") != TOKEN:
        await websocket.send(json.dumps({"type": "error", "reason": "unauthorized"}))
        await websocket.close(1008, "unauthorized")
        return
    await websocket.send(json.dumps({"type": "auth_ok"}))

    # Business messages.
    async for message in websocket:
        event = json.loads(message)
        if event["type"] == "payment":
            await websocket.send(json.dumps({"type": "ack", "reference": event["reference"]}))
        else:
            await websocket.send(json.dumps({"type": "error", "reason": "unknown type"}))


async def main():
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
