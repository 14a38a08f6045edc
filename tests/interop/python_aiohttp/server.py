"""Interop target: a payment endpoint on `aiohttp.web`, `web.WebSocketResponse()` defaults.

Written the way the aiohttp docs write a WebSocket handler (`async for msg in ws`, handling
TEXT and ERROR messages), with the pattern many aiohttp apps use for authentication: a token
in the URL query (`/ws?token=...`) checked before `ws.prepare()`, 401 otherwise. After the
upgrade the server sends `{"type":"welcome"}`; each text message is parsed with `json.loads`
with no error handling of its own (whatever aiohttp does with an exception in a handler is the
behaviour under test). Every WebSocketResponse option is left at its default (max_msg_size,
heartbeat, autoping, compress, receive_timeout, ...).

usage: INTEROP_TOKEN=secret python3 server.py
       -> prints "PORT <n>", serves ws://127.0.0.1:<n>/ws?token=secret
"""
import asyncio
import json
import os

import aiohttp
from aiohttp import web

TOKEN = os.environ["INTEROP_TOKEN"]


async def websocket_handler(request):
    if request.query.get("token") != TOKEN:
        raise web.HTTPUnauthorized()

    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_json({"type": "welcome"})

    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            data = json.loads(msg.data)
            if data["type"] == "payment":
                await ws.send_json({"type": "ack", "reference": data["reference"]})
            else:
                await ws.send_json({"type": "error", "reason": "unknown type"})
        elif msg.type == aiohttp.WSMsgType.ERROR:
            print("ws connection closed with exception %s" % ws.exception())

    return ws


async def main():
    app = web.Application()
    app.add_routes([web.get("/ws", websocket_handler)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"PORT {port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
