"""A minimal ASGI app served by uvicorn (a server not written here): no
warm-up, no shutdown handling of its own — uvicorn's graceful stop on
SIGTERM is all there is. Used by tests/analysis/test_real_runs.py."""


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})
