"""The WSGI application gunicorn serves in the corpus (gunicorn is the server
under test; this is only the app a user would hand it): answers every path
after WORK_MS milliseconds (a handler doing some work) and names its pod in
X-Pod-Name, the header the engine attributes by."""

import os
import time

POD = os.environ.get("POD_NAME", "")
WORK_S = float(os.environ.get("WORK_MS", "20")) / 1000


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/work" and WORK_S > 0:
        time.sleep(WORK_S)
    body = b"ok\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
                              ("X-Pod-Name", POD)])
    return [body]
