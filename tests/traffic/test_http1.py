"""The request bytes, built in one place (Target): exact, and a '%' in the
URL or a header is sent as written (the template formats only the request id)."""

from __future__ import annotations

from harness.traffic.http1 import Target


def test_request_bytes_for_keepalive_and_close():
    t = Target("http://127.0.0.1:8080/a%20b?q=1%", method="POST", headers={"X-Share": "50%"})
    head = (b"POST /a%20b?q=1% HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: rollout-harness\r\nX-Share: 50%\r\n"
            b"Content-Length: 0\r\nX-Request-Id: 12")
    assert t.request(12, True) == t.keepalive_request(12) == head + b"\r\n\r\n"
    assert t.request(12, False) == t.close_request(12) == head + b"\r\nConnection: close\r\n\r\n"
