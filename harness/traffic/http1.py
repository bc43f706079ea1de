"""HTTP/1.1 on an asyncio Protocol: one request at a time per connection.

The hot path is callback-driven: no coroutine, future or timer per request.
The request bytes are a template with only X-Request-Id varying; the
response is parsed by httptools with two callbacks per response (headers
complete, message complete); the pod header is read from the header block.
"""

from __future__ import annotations

import socket
from typing import Protocol
from urllib.parse import urlsplit

import httptools

from harness.errors import BadInput


class Target:
    """A parsed target URL and the request templates for it."""

    def __init__(self, url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
                 pod_header: str = "X-Pod-Name"):
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise BadInput(f"URL {url!r}: only http:// targets are supported by the engine (got scheme {parts.scheme!r})")
        if not parts.hostname:
            raise BadInput(f"URL {url!r}: no host; expected e.g. http://127.0.0.1:8080/work")
        self.url = url
        self.host = parts.hostname
        try:
            self.port = parts.port or 80
        except ValueError as exc:
            raise BadInput(f"URL {url!r}: bad port") from exc
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_hdr = parts.netloc
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = f"{method} {self.path} HTTP/1.1\r\nHost: {host_hdr}\r\nUser-Agent: rollout-harness\r\n{extra}"
        body = "Content-Length: 0\r\n" if method in ("POST", "PUT") else ""
        self.prefix = (head + body + "X-Request-Id: ").encode("latin-1")
        self.suffix_keepalive = b"\r\n\r\n"
        self.suffix_close = b"\r\nConnection: close\r\n\r\n"
        # seq -> request bytes, one C call each (the per-request hot path); '%' in the
        # URL or headers is escaped so only the request id is formatted
        template = self.prefix.replace(b"%", b"%%") + b"%d"
        self.keepalive_request = (template + self.suffix_keepalive).__mod__
        self.close_request = (template + self.suffix_close).__mod__
        name = pod_header.encode("latin-1")
        self.pod_header_needles = (b"\r\n" + name + b":", b"\r\n" + name.lower() + b":")

    def request(self, seq: int, keepalive: bool) -> bytes:
        """The request bytes for ``seq`` (built only here, from the templates above)."""
        return self.keepalive_request(seq) if keepalive else self.close_request(seq)


class ConnOwner(Protocol):
    """What a connection tells its engine (the whole protocol between them)."""

    def conn_done(self, conn: "Conn") -> None: ...  # a complete response to conn's request
    def conn_lost(self, conn: "Conn", exc: BaseException | None) -> None: ...  # the connection closed
    def conn_failed(self, conn: "Conn", exc: BaseException, stage: str) -> None: ...  # malformed response
    def pod_name(self, raw: bytes) -> str: ...  # the pod header's raw value, decoded once per value


class Conn:
    """One client connection (an asyncio.Protocol) carrying one request at a time.

    The engine drives it with ``send``, ``finish``, ``close`` and ``abort`` and
    reads the request's state (seq, times, status, pod) from its attributes;
    the connection reports back through ``ConnOwner``. Neither writes the
    other's fields.
    """

    __slots__ = (
        "owner", "transport", "parser", "needles", "pod_names", "conn_id", "route_pod", "keepalive", "served",
        "seq", "sched_ns", "sent_ns", "deadline_ns", "status", "pod", "head", "got_bytes",
        "reusable", "closed",
    )

    def __init__(self, owner: ConnOwner, conn_id: int, route_pod: str | None, keepalive: bool, *,
                 pod_header_needles: tuple[bytes, bytes], pod_names: dict[bytes, str], chain=None):
        # ``chain``: the compiled Conn's closed-loop path (harness.traffic.hotpath);
        # here the owner's conn_done does that work, so it is not kept
        self.owner = owner
        self.transport = None
        self.parser = httptools.HttpResponseParser(self)
        self.needles = pod_header_needles
        self.pod_names = pod_names  # the owner's cache of decoded pod names (read-only here)
        self.conn_id = conn_id
        self.route_pod = route_pod
        self.keepalive = keepalive  # a pooled keep-alive connection (else Connection: close)
        self.served = 0  # responses completed on this connection
        self.seq = -1  # the request in flight; -1: idle
        self.sched_ns = 0
        self.sent_ns = 0
        self.deadline_ns = 0
        self.status = 0
        self.pod = None
        self.head = None
        self.got_bytes = False
        self.reusable = True
        self.closed = False

    # -- asyncio.Protocol ---------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def data_received(self, data: bytes) -> None:
        if self.seq < 0:
            # Bytes nobody asked for (e.g. a 408 before close): the connection
            # is no longer in a known state; do not reuse it.
            self.reusable = False
            return
        self.got_bytes = True
        head = self.head
        if head is not None:
            # The pod header, from the header block (almost always all in the first chunk):
            # one exact find in the common case; other casings and split blocks are rarer.
            buf = b"".join(head) + data if head else data
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.head = [buf]  # the header block continues in the next chunk
            else:
                self.head = None
                needle = self.needles[0]
                i = buf.find(needle, 0, end)
                if i < 0:
                    needle = self.needles[1]
                    i = buf.find(needle, 0, end)
                    if i < 0:
                        i = buf[:end].lower().find(needle)
                if i >= 0:
                    start = i + len(needle)
                    raw = buf[start:buf.find(b"\r\n", start, end + 2)]
                    self.pod = self.pod_names.get(raw) or self.owner.pod_name(raw)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.owner.conn_failed(self, ValueError("unexpected protocol upgrade"), "read")
        except httptools.HttpParserError as exc:
            self.owner.conn_failed(self, ValueError(f"malformed HTTP response: {exc}"), "read")

    def eof_received(self):
        return False  # let the transport close; connection_lost reports it

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.owner.conn_lost(self, exc)

    def pause_writing(self) -> None:  # requests are tiny; nothing to do
        pass

    def resume_writing(self) -> None:
        pass

    # -- httptools callbacks ------------------------------------------------
    def on_message_complete(self) -> None:
        parser = self.parser
        self.status = parser.get_status_code()
        self.reusable = self.reusable and parser.should_keep_alive()
        self.owner.conn_done(self)

    def status_so_far(self) -> int:
        """The status of a response cut short: only if this request got bytes
        (the parser still holds the previous response's status otherwise)."""
        if not self.got_bytes:
            return 0
        try:
            return self.parser.get_status_code()
        except Exception:  # noqa: BLE001 - no status line parsed yet
            return 0

    # -- driven by the engine -----------------------------------------------
    def send(self, seq: int, sched_ns: int, sent_ns: int, deadline_ns: int, request: bytes) -> None:
        self.seq = seq
        self.sched_ns = sched_ns
        self.sent_ns = sent_ns
        self.deadline_ns = deadline_ns
        self.status = 0
        self.pod = None
        self.head = []
        self.got_bytes = False
        self.transport.write(request)

    def finish(self, *, answered: bool) -> None:
        """The request in flight is recorded; the connection is idle again.
        ``answered``: it got a complete response (counts toward reuse)."""
        if answered:
            self.served += 1
        self.seq = -1
        self.head = None

    def leave_pool(self) -> bool:
        """No more requests go on this connection; True if it was pooled."""
        was, self.keepalive = self.keepalive, False
        return was

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
