"""The ASGI application hypercorn serves in the corpus (hypercorn is the
server under test; this is only the app a user would hand it): answers every
path after WORK_MS milliseconds and names its pod in X-Pod-Name."""

import asyncio
import os

POD = os.environ.get("POD_NAME", "").encode()
WORK_S = float(os.environ.get("WORK_MS", "20")) / 1000


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/work" and WORK_S > 0:
        await asyncio.sleep(WORK_S)
    body = b"ok\n"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode()),
                            (b"x-pod-name", POD)]})
    await send({"type": "http.response.body", "body": body})
