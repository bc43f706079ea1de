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


# -- the closed loop's capacity path (Chain): the next request straight to the socket --

URL = "http://127.0.0.1:8080/work"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pod-Name: pod-a\r\n\r\nok"
RESPONSE_503 = b"HTTP/1.1 503 OK\r\nContent-Length: 2\r\nX-Pod-Name: pod-a\r\n\r\nok"  # same length


class Owner:
    """The engine's side as a connection on a Chain sees it."""

    def __init__(self):
        self._seq = 10
        self.done: list[tuple[int, int, str]] = []
        self.lost: list[BaseException | None] = []

    def conn_done(self, conn):
        self.done.append((conn.seq, conn.status, conn.pod))

    def conn_lost(self, conn, exc):
        self.lost.append(exc)

    def pod_name(self, raw):
        return raw.strip().decode("latin-1")


class SocketTransport:
    """A transport over one end of a socketpair that records its own writes
    (so a test tells a direct write, which the peer receives, from the transport's)."""

    def __init__(self, sock, buffered=0):
        self.sock, self.buffered = sock, buffered
        self.writes: list[bytes] = []
        self.aborted = False

    def get_extra_info(self, name, default=None):
        return self.sock if name == "socket" else default

    def write(self, data):
        self.writes.append(bytes(data))

    def get_write_buffer_size(self):
        return self.buffered

    def abort(self):
        self.aborted = True

    def close(self):
        pass


@pytest.fixture
def chained(hotpath, tmp_path):
    import collections
    import socket
    import time

    from harness.model.outcome import OUTCOME_CODE, Outcome
    from harness.model.requests import RequestWriter
    from harness.traffic.config import LiveStats
    from harness.traffic.http1 import Target

    target = Target(URL)
    writer = RequestWriter(tmp_path / "w.arrow")
    live = LiveStats()
    chain = hotpath.Chain(step=1, read_timeout_ns=5_000_000_000, anchor=0, waiting=collections.deque(),
                          mono=time.monotonic_ns, prefix=target.prefix, suffix=target.suffix_keepalive, writer=writer,
                          live=live, ok_code=OUTCOME_CODE[Outcome.OK])
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.settimeout(5)
    owner = Owner()
    conn = hotpath.Conn(owner, 1, None, True, pod_header_needles=target.pod_header_needles, pod_names={}, chain=chain)
    transport = SocketTransport(ours)
    conn.connection_made(transport)
    conn.send(0, 0, 0, 5_000_000_000, target.keepalive_request(0))
    yield conn, transport, peer, owner, writer, target, live
    writer.close()
    ours.close()
    peer.close()


def _rows(writer):
    n = len(writer)
    ints = list(writer.ints)
    return [(ints[9 * i], ints[9 * i + 5]) for i in range(n)], list(writer.pod)


def test_the_next_request_goes_straight_to_the_socket(chained):
    """A complete 200: its row is written, and request 10 (the engine's next seq)
    reaches the peer without passing through the transport."""
    conn, transport, peer, owner, writer, target, live = chained
    conn.data_received(RESPONSE)
    assert peer.recv(4096) == target.keepalive_request(10)
    assert transport.writes == [target.keepalive_request(0)] and conn.fd >= 0
    assert _rows(writer) == ([(0, 200)], ["pod-a"]) and (conn.seq, owner._seq) == (10, 11) and owner.done == []


def test_the_same_response_again_reads_the_same_and_a_different_one_is_read_anew(chained):
    """The same bytes three times, then a 503 of the same length: rows 200, 200,
    200 with pod-a, then the 503 goes to the engine (conn_done), not the chain."""
    conn, transport, peer, owner, writer, target, live = chained
    for _ in range(3):
        conn.data_received(RESPONSE)
    conn.data_received(RESPONSE_503)
    assert _rows(writer) == ([(0, 200), (10, 200), (11, 200)], ["pod-a"] * 3)
    assert owner.done == [(12, 503, "pod-a")]
    assert peer.recv(4096) == b"".join(target.keepalive_request(s) for s in (10, 11, 12))


def test_a_write_that_would_block_goes_to_the_transport_for_good(chained):
    """The socket's buffer is full: request 10 is handed to the transport (which
    waits for room), and so is every later one (bytes may wait there)."""
    conn, transport, peer, owner, writer, target, live = chained
    with pytest.raises(BlockingIOError):
        while True:
            transport.sock.send(b"x" * 4096)
    conn.data_received(RESPONSE)
    assert conn.fd == -1 and transport.writes[1:] == [target.keepalive_request(10)]
    conn.data_received(RESPONSE)
    assert transport.writes[1:] == [target.keepalive_request(10), target.keepalive_request(11)]


def test_a_write_error_closes_the_connection_with_that_error(chained):
    """The peer is gone: the write fails with EPIPE; the connection is aborted and
    its loss reports the EPIPE, as the transport's own write error would."""
    import errno

    conn, transport, peer, owner, writer, target, live = chained
    peer.close()
    conn.data_received(RESPONSE)
    assert transport.aborted and conn.seq == 10 and _rows(writer) == ([(0, 200)], ["pod-a"])
    conn.connection_lost(None)  # what the transport does after abort()
    assert len(owner.lost) == 1 and isinstance(owner.lost[0], BrokenPipeError)
    assert owner.lost[0].errno == errno.EPIPE and conn.closed and conn.fd == -1


def test_bytes_waiting_in_the_transport_turn_direct_writes_off(hotpath, chained):
    conn, transport, peer, owner, writer, target, live = chained
    transport.buffered = 10
    conn.send(1, 0, 0, 5_000_000_000, target.keepalive_request(1))
    assert conn.fd == -1
    conn.data_received(RESPONSE)
    assert transport.writes[-1] == target.keepalive_request(10)


def test_a_connection_off_the_chain_never_writes_directly(hotpath):
    import socket

    ours, peer = socket.socketpair()
    try:
        conn = hotpath.Conn(Owner(), 1, None, True, pod_header_needles=(b"\r\nx:", b"\r\nx:"), pod_names={})
        conn.connection_made(SocketTransport(ours))
        assert conn.fd == -1
    finally:
        ours.close()
        peer.close()


def test_the_chain_counts_in_c_and_settle_adds_to_the_live_counters(chained):
    """Three answers on the chain: 3 issued and 3 ok wait in the chain (the
    live counters untouched) until settle() adds them, once."""
    from harness.model.outcome import OUTCOME_CODE, Outcome

    conn, transport, peer, owner, writer, target, live = chained
    for _ in range(3):
        conn.data_received(RESPONSE)
    chain = conn.chain
    assert (chain.issued, chain.ok, live.issued, live.completed) == (3, 3, 0, 0)
    chain.settle()
    chain.settle()
    assert (chain.issued, chain.ok, live.issued) == (0, 0, 3)
    assert live.counts[OUTCOME_CODE[Outcome.OK]] == 3 and live.completed == 3


@pytest.mark.parametrize("seq", [0, 7, 10, 123456789012, -5])
def test_the_chain_builds_the_bytes_target_builds(chained, seq):
    conn, transport, peer, owner, writer, target, live = chained
    assert conn.chain.request(seq) == target.keepalive_request(seq)
