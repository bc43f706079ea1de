"""The compiled hot path's own parser (harness/traffic/hotpath.pyx): a response
Conn parses itself must read exactly as httptools reads it (status,
keep-alive); anything outside the plain subset must go to httptools. The
engine tests run on both paths (tests/traffic/conftest.py), the compiled
closed loop (Chain) included: test_engine.py."""

from __future__ import annotations

import os
import subprocess
import sys

import httptools
import pytest

from harness.traffic import connections

PLAIN = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pod-Name: pod-a\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 14:09:25 GMT\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 3\r\nConnection: keep-alive\r\nX-Pod-Name: bench-nginx\r\n\r\nok\n",
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
    b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 5\r\n\r\nnope\n",
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 201\r\nContent-Length:   4  \r\n\r\nmade",
    b"HTTP/1.1 404 Not Found\r\nCONTENT-LENGTH: 0\r\nX-Pod-Name:pod-d \r\n\r\n",
]

NOT_PLAIN = {
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    "no length": b"HTTP/1.1 200 OK\r\nX-Pod-Name: a\r\n\r\nok",
    "204": b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
    "304": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n",
    "1xx": b"HTTP/1.1 100 Continue\r\n\r\n",
    "body cut short": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok",
    "bytes after it": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
    "two lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
    "bad length": b"HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok",
    "connection upgrade": b"HTTP/1.1 200 OK\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n",
    "folded header": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 0\r\n\r\n",
    "space before colon": b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
    "non-ASCII value": b"HTTP/1.1 200 OK\r\nX-A: \xff\r\nContent-Length: 0\r\n\r\n",
    "HTTP/2 line": b"HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n",
    "4-digit status": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "not HTTP": b"garbage\r\n\r\n",
}


def httptools_reads(data: bytes) -> tuple[int, bool]:
    done = []

    class Proto:
        def on_message_complete(self):
            done.append((parser.get_status_code(), parser.should_keep_alive()))

    parser = httptools.HttpResponseParser(Proto())
    parser.feed_data(data)
    assert len(done) == 1, data
    return done[0]


@pytest.fixture
def conn_path():
    """This module is about the compiled path only (no [python] twin of each test)."""
    return "compiled"


@pytest.fixture
def hotpath():
    if connections.HOTPATH is None:
        pytest.fail("the compiled hot path is not built (or ROLLOUT_HARNESS_PURE_PYTHON=1 is set): run make install")
    return connections.HOTPATH


@pytest.mark.parametrize("data", PLAIN, ids=range(len(PLAIN)))
def test_a_plain_response_reads_as_httptools_reads_it(hotpath, data):
    assert hotpath.plain_response(data) == httptools_reads(data)


@pytest.mark.parametrize("data", NOT_PLAIN.values(), ids=NOT_PLAIN.keys())
def test_anything_else_goes_to_httptools(hotpath, data):
    assert hotpath.plain_response(data) is None


def test_the_pure_python_switch_turns_the_compiled_path_off():
    """ROLLOUT_HARNESS_PURE_PYTHON=1 (the bench's fallback figure) loads no compiled module."""
    probe = "from harness.traffic import connections as c, engine as e; print(c.HOTPATH, e.Engine)"
    env = {**os.environ, "ROLLOUT_HARNESS_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    assert out.startswith("None ")
