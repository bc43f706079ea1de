"""A fake network and a fake clock for the engine: an event loop whose time
only moves when nothing is ready (so a test of seconds of schedule runs in
milliseconds, and every time is exact), and a transport that hands each
request to a scripted server instead of a socket.

The engine is used unchanged: it reads the run clock (``LoopClock``, the
loop's virtual time) and dials with ``loop.create_connection``.
"""

from __future__ import annotations

import asyncio
import errno
import selectors

from harness.model.clock import RunClock

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pod-Name: pod-a\r\n\r\nok"


class _AdvancingSelector(selectors.DefaultSelector):
    def __init__(self, loop: "VirtualLoop"):
        super().__init__()
        self._loop = loop

    def select(self, timeout=None):
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:
            raise RuntimeError("nothing is scheduled: the test would wait forever")
        self._loop.vt += timeout
        return []


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self, server: "Server"):
        self.vt = 0.0
        self.server = server
        super().__init__(_AdvancingSelector(self))

    def time(self) -> float:
        return self.vt

    async def create_connection(self, protocol_factory, host=None, port=None, **kw):
        return self.server.accept(self, protocol_factory)


def _loop_ns() -> int:
    return round(asyncio.get_running_loop().time() * 1e9)


class LoopClock(RunClock):
    """The run clock on the loop's virtual time: t_ns = loop time in ns (anchor 0)."""

    source = staticmethod(_loop_ns)


class FakeTransport(asyncio.Transport):
    def __init__(self, loop: VirtualLoop, server: "Server", conn):
        super().__init__()
        self.loop, self.server, self.conn = loop, server, conn
        self.closed = False

    def get_extra_info(self, name, default=None):
        return default

    def write(self, data: bytes) -> None:
        assert not self.closed, "write on a closed transport"
        self.server.requests.append(data)
        self.server.on_request(self, data)

    def respond(self, data: bytes = RESPONSE) -> None:
        if not self.closed:
            self.conn.data_received(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.call_soon(self.conn.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self.closed


class Server:
    """Scripted: ``refuse`` every dial, or answer each request ``delay_s``
    after it arrives (``None``: never)."""

    def __init__(self, *, delay_s: float | None = 0.0, refuse: bool = False):
        self.delay_s = delay_s
        self.refuse = refuse
        self.requests: list[bytes] = []
        self.dials = 0

    def accept(self, loop: VirtualLoop, protocol_factory):
        self.dials += 1
        if self.refuse:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        conn = protocol_factory()
        transport = FakeTransport(loop, self, conn)
        conn.connection_made(transport)
        return transport, conn

    def on_request(self, transport: FakeTransport, data: bytes) -> None:
        if self.delay_s is not None:
            transport.loop.call_later(self.delay_s, transport.respond)


def run_virtual(server: Server, coro_fn):
    loop = VirtualLoop(server)
    try:
        return loop.run_until_complete(coro_fn())
    finally:
        loop.close()
