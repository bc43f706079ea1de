# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The engine's per-response path, compiled (Cython), because the
interpreter's share of a request was what kept the closed loop under wrk's
throughput (docs/engine.md has the profile and the figures).

``Conn`` is harness.traffic.http1.Conn compiled: the same attributes, the
same protocol with the engine (``ConnOwner``), the same records. In C:

- a response that is one complete, plain message in one read (a status line,
  headers, a Content-Length body ending exactly where the read ends: what a
  server sends almost always) is parsed here; anything else (chunked,
  no length, 1xx/204/304, an Upgrade, a Connection header other than close
  or keep-alive, a byte outside printable ASCII, a split read) goes to
  httptools exactly as the pure-Python Conn does;
- on a closed loop of keep-alive connections (``Chain``), the row is written
  into the records' buffers and the next request is sent from here, which is
  ConnectionSide.conn_done's capacity path without the interpreter, written
  straight to the socket (the transport's write path cost as much as the
  parse); the transport takes over for good if a write is short or would
  block, and a write error closes the connection with that error;
- a response byte for byte the same as the connection's last plain one (a
  server's differ mostly in their Date header) reads as that one did.

Built by ``make install`` (scripts/build_hotpath.py) when a C compiler is
there; without it, or with ROLLOUT_HARNESS_PURE_PYTHON=1, the engine uses the
pure-Python Conn. tests/traffic/ run the engine on both."""

from cpython cimport array as carray
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_Append
from libc.stdio cimport snprintf
from libc.stdlib cimport free, malloc
from libc.errno cimport EAGAIN, EINTR, errno
from libc.string cimport memcmp, memcpy, strerror

import socket
import time

import httptools

#: ``head`` of a request whose response has not started (http1.Conn uses a new []
#: each time; an empty tuple reads the same and is never mutated)
cdef tuple _FRESH = ()

cdef extern from "time.h":
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clk_id, timespec *tp) nogil
    int CLOCK_MONOTONIC


cdef inline long long _monotonic_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <long long>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef extern from "errno.h":
    int EWOULDBLOCK


cdef extern from "unistd.h":
    ssize_t c_write "write"(int fd, const void *buf, size_t count) nogil


include "plainhttp.pxi"


cdef class Chain:
    """A closed loop of keep-alive connections only: a complete response is
    recorded and the next request goes out on the same connection at once
    (harness.traffic.connections.ConnectionSide.conn_done's capacity path).
    The engine makes one per run and clears ``open`` when it stops; the next
    request number stays the engine's own (``_seq``). The requests issued and
    answered ok here are counted in C and added to the live counters by
    ``settle`` (the engine's sweep, every 50 ms, and its shutdown)."""

    cdef public bint open
    cdef public long long issued, ok  # not yet in ``live``
    cdef long long step, read_timeout_ns, anchor
    cdef bint c_clock
    cdef object waiting, mono, live
    cdef carray.array ints
    cdef list error, pod, route, counts
    cdef int ok_code
    cdef char *buf  # the request: prefix, then the id and the suffix written per request
    cdef Py_ssize_t prefix_len
    cdef bytes suffix

    def __cinit__(self):
        self.buf = NULL

    def __dealloc__(self):
        free(self.buf)

    def __init__(self, *, step, read_timeout_ns, anchor, waiting, mono, prefix, suffix, writer, live, ok_code):
        self.step, self.read_timeout_ns, self.anchor = step, read_timeout_ns, anchor
        self.waiting, self.mono = waiting, mono
        self.c_clock = mono is time.monotonic_ns  # the same CLOCK_MONOTONIC, read without a call
        self.prefix_len, self.suffix = PyBytes_GET_SIZE(prefix), suffix
        self.buf = <char *>malloc(self.prefix_len + 24 + PyBytes_GET_SIZE(suffix))
        if self.buf == NULL:
            raise MemoryError()
        memcpy(self.buf, PyBytes_AS_STRING(prefix), self.prefix_len)
        self.issued = self.ok = 0
        # the records' buffers are cleared in place after a flush, never replaced
        self.ints, self.error, self.pod, self.route = writer.ints, writer.error, writer.pod, writer.route_pod
        self.live, self.counts, self.ok_code = live, live.counts, ok_code
        self.open = True

    cdef inline long long now(self):
        if self.c_clock:
            return _monotonic_ns() - self.anchor
        return self.mono() - self.anchor

    def settle(self):
        """Add the requests counted here to the live counters."""
        self.live.issued += self.issued
        self.counts[self.ok_code] += self.ok
        self.issued = self.ok = 0

    def request(self, long long seq):
        """The keep-alive request bytes for ``seq`` (what is sent; for tests)."""
        return PyBytes_FromStringAndSize(self.buf, self.fill(seq))

    cdef Py_ssize_t fill(self, long long seq):
        """The keep-alive request for ``seq`` in ``buf``, returning its length:
        harness.traffic.http1.Target's template (prefix, request id, suffix),
        filled without a format call or a bytes object."""
        cdef char num[24]
        cdef int k = 0, i
        cdef char c
        if seq < 0:
            k = snprintf(num, 24, "%lld", seq)
        else:
            while True:  # the digits, least significant first, then reversed
                num[k] = <char>(48 + seq % 10)
                k += 1
                seq //= 10
                if seq == 0:
                    break
            for i in range(k // 2):
                c = num[i]
                num[i] = num[k - 1 - i]
                num[k - 1 - i] = c
        cdef Py_ssize_t b = PyBytes_GET_SIZE(self.suffix)
        memcpy(self.buf + self.prefix_len, num, k)
        memcpy(self.buf + self.prefix_len + k, PyBytes_AS_STRING(self.suffix), b)
        return self.prefix_len + k + b


cdef class Conn:
    """See harness.traffic.http1.Conn: the same connection, compiled."""

    cdef public object owner, transport, parser, needles, pod_names, route_pod, pod, head, chain
    cdef public long long conn_id, served, seq, sched_ns, sent_ns, deadline_ns
    cdef public int status
    cdef public bint keepalive, got_bytes, reusable, closed
    cdef object _done, _last_pod, _write_error
    cdef bytes _needle0, _needle1, _last_raw
    cdef public int fd  # the socket, written directly by the closed loop; -1: through the transport
    cdef bytes _same  # the last plain response, with what it read as
    cdef object _same_pod
    cdef int _same_status
    cdef bint _same_keepalive

    def __init__(self, owner, conn_id, route_pod, keepalive, *, pod_header_needles, pod_names, chain=None):
        self.owner = owner
        self._done = owner.conn_done
        self.transport = None
        self.parser = httptools.HttpResponseParser(self)
        self.needles = pod_header_needles
        self._needle0, self._needle1 = pod_header_needles
        self.pod_names = pod_names
        self.conn_id = conn_id
        self.route_pod = route_pod
        self.keepalive = keepalive
        self.chain = chain
        self.served = 0
        self.seq = -1
        self.sched_ns = 0
        self.sent_ns = 0
        self.deadline_ns = 0
        self.status = 0
        self.pod = None
        self.head = None
        self.got_bytes = False
        self.reusable = True
        self.closed = False
        self._last_raw = None  # the pod header's last raw value, and its name
        self._last_pod = None
        self._write_error = None
        self.fd = -1
        self._same = None

    # -- asyncio.Protocol ---------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            if self.chain is not None:
                self.fd = sock.fileno()

    def data_received(self, bytes data):
        cdef bytes buf, needle
        cdef Py_ssize_t end, i, start, stop
        cdef bint fresh
        cdef int status = 0
        cdef bint keepalive = False
        if self.seq < 0:
            # Bytes nobody asked for (e.g. a 408 before close): do not reuse the connection.
            self.reusable = False
            return
        self.got_bytes = True
        head = self.head
        same = self._same
        if (head is not None and not head and same is not None and PyBytes_GET_SIZE(data) == PyBytes_GET_SIZE(same)
                and memcmp(PyBytes_AS_STRING(data), PyBytes_AS_STRING(same), PyBytes_GET_SIZE(data)) == 0):
            self.head = None  # the same bytes as the last plain response: the same reading
            self.pod = self._same_pod
            self._complete(self._same_status, self._same_keepalive)
            return
        if head is not None:
            fresh = not head
            buf = b"".join(head) + data if head else data
            end = _find(buf, 0, PyBytes_GET_SIZE(buf), b"\r\n\r\n")
            if end < 0:
                self.head = [buf]  # the header block continues in the next chunk
            else:
                self.head = None
                needle = self._needle0
                i = _find(buf, 0, end, needle)
                if i < 0:
                    needle = self._needle1
                    i = _find(buf, 0, end, needle)
                    if i < 0:
                        i = buf[:end].lower().find(needle)
                if i >= 0:
                    start = i + PyBytes_GET_SIZE(needle)
                    stop = _find(buf, start, end + 2, b"\r\n")
                    if self._last_raw is not None and stop - start == PyBytes_GET_SIZE(self._last_raw) and memcmp(
                            PyBytes_AS_STRING(buf) + start, PyBytes_AS_STRING(self._last_raw), stop - start) == 0:
                        self.pod = self._last_pod  # the same pod as last time: no slice, no lookup
                    else:
                        raw = buf[start:stop]
                        pod = self.pod_names.get(raw)
                        self.pod = pod if pod is not None else self.owner.pod_name(raw)
                        self._last_raw, self._last_pod = raw, self.pod
                if fresh and _plain_response(<const unsigned char *>PyBytes_AS_STRING(buf), PyBytes_GET_SIZE(buf),
                                             end, &status, &keepalive):
                    # one whole plain response: httptools' parser stays at a message start
                    self._same, self._same_pod, self._same_status, self._same_keepalive = data, self.pod, status, keepalive
                    self._complete(status, keepalive)
                    return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.owner.conn_failed(self, ValueError("unexpected protocol upgrade"), "read")
        except httptools.HttpParserError as exc:
            self.owner.conn_failed(self, ValueError(f"malformed HTTP response: {exc}"), "read")

    def eof_received(self):
        return False  # let the transport close; connection_lost reports it

    def connection_lost(self, exc):
        self.closed = True
        self.fd = -1
        if exc is None and self._write_error is not None:
            exc = self._write_error  # the direct write's error, reported as the transport reports its own
        self.owner.conn_lost(self, exc)

    def pause_writing(self):  # requests are tiny; nothing to do
        pass

    def resume_writing(self):
        pass

    # -- httptools callbacks ------------------------------------------------
    def on_message_complete(self):
        parser = self.parser
        self._complete(parser.get_status_code(), parser.should_keep_alive())

    cdef _complete(self, int status, bint keepalive):
        cdef Chain chain = self.chain
        cdef long long now, seq, n
        cdef long long *row
        self.status = status
        self.reusable = self.reusable and keepalive
        if (chain is None or not chain.open or status >= 400 or not self.keepalive or not self.reusable
                or len(chain.waiting)):
            self._done(self)
            return
        # the closed loop's capacity path (ConnectionSide.conn_done): the row, then the next request
        now = chain.now()
        n = len(chain.ints)
        carray.resize_smart(chain.ints, n + 9)  # RequestWriter.INT_FIELDS, in order
        row = chain.ints.data.as_longlongs + n
        row[0] = self.seq
        row[1] = self.sched_ns
        row[2] = self.sent_ns
        row[3] = now
        row[4] = chain.ok_code
        row[5] = status
        row[6] = 0
        row[7] = self.conn_id
        row[8] = self.served > 0
        PyList_Append(chain.error, None)
        PyList_Append(chain.pod, self.pod)
        PyList_Append(chain.route, self.route_pod)
        chain.ok += 1
        self.served += 1
        owner = self.owner
        seq = owner._seq
        owner._seq = seq + chain.step
        chain.issued += 1
        self.seq = seq
        self.sched_ns = now
        self.sent_ns = now
        self.deadline_ns = now + chain.read_timeout_ns
        self.status = 0
        self.pod = None
        self.head = _FRESH
        self.got_bytes = False
        self._write(chain.buf, chain.fill(seq))

    cdef _write(self, const char *request, Py_ssize_t size):
        """The request straight to the socket; the transport if the write is short,
        would block, or fails (then the connection is aborted with that error)."""
        cdef Py_ssize_t n = -1
        cdef int err = 0
        if self.fd < 0 or self.closed:
            self.transport.write(PyBytes_FromStringAndSize(request, size))
            return
        while True:
            n = c_write(self.fd, request, size)
            if n >= 0 or errno != EINTR:
                break
        if n == size:
            return
        err = errno if n < 0 else 0
        self.fd = -1  # from now on the transport writes (it may hold bytes to send)
        if n >= 0:
            self.transport.write(PyBytes_FromStringAndSize(request + n, size - n))
        elif err == EAGAIN or err == EWOULDBLOCK:
            self.transport.write(PyBytes_FromStringAndSize(request, size))
        else:
            self._write_error = OSError(err, strerror(err).decode("utf-8", "replace"))
            self.transport.abort()

    def status_so_far(self):
        """The status of a response cut short: only if this request got bytes."""
        if not self.got_bytes:
            return 0
        try:
            return self.parser.get_status_code()
        except Exception:  # no status line parsed yet
            return 0

    # -- driven by the engine -----------------------------------------------
    def send(self, long long seq, long long sched_ns, long long sent_ns, long long deadline_ns, bytes request):
        self.seq = seq
        self.sched_ns = sched_ns
        self.sent_ns = sent_ns
        self.deadline_ns = deadline_ns
        self.status = 0
        self.pod = None
        self.head = _FRESH
        self.got_bytes = False
        self.transport.write(request)
        if self.fd >= 0 and self.transport.get_write_buffer_size():
            self.fd = -1  # bytes wait in the transport: direct writes would overtake them

    def finish(self, *, answered):
        """The request in flight is recorded; the connection is idle again."""
        if answered:
            self.served += 1
        self.seq = -1
        self.head = None

    def leave_pool(self):
        """No more requests go on this connection; True if it was pooled."""
        was = self.keepalive
        self.keepalive = False
        return was

    def close(self):
        if self.transport is not None:
            self.transport.close()

    def abort(self):
        if self.transport is not None:
            self.transport.abort()
