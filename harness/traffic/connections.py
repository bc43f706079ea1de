"""The engine's connection side: sending on a pooled connection, dialling a
new one where the resolver says, and what happens when a connection answers,
closes or fails (the ``ConnOwner`` protocol of harness.traffic.http1).

A mixin of ``Engine`` (harness.traffic.engine), split from the schedule side
so each reads on its own; it uses the engine's state (pool, waiters, in-flight
count, writer) and its ``_record``/``_maybe_done``/``_fill``/``_pump``.
"""

from __future__ import annotations

import asyncio
import errno as _errno
import os

from harness.model.outcome import OUTCOME_CODE, Outcome, outcome_for_status
from harness.traffic.classify import classify_error
from harness.traffic.http1 import Conn

# The compiled hot path (harness/traffic/hotpath.pyx, built by `make install`):
# the same Conn with the closed loop's row and next request done in C. Without
# it, or with ROLLOUT_HARNESS_PURE_PYTHON=1, connections are http1.Conn.
try:
    if os.environ.get("ROLLOUT_HARNESS_PURE_PYTHON") == "1":
        raise ImportError("ROLLOUT_HARNESS_PURE_PYTHON=1")
    from harness.traffic import hotpath as HOTPATH
except ImportError:
    HOTPATH = None

_OK = OUTCOME_CODE[Outcome.OK]
_DROPPED = OUTCOME_CODE[Outcome.DROPPED]
_REFUSED = OUTCOME_CODE[Outcome.REFUSED]
_STATUS_CODE: dict[int, int] = {}  # status -> outcome code, filled lazily


def _status_code(status: int) -> int:
    code = _STATUS_CODE.get(status)
    if code is None:
        code = _STATUS_CODE[status] = OUTCOME_CODE[outcome_for_status(status)]
    return code


class ConnectionSide:
    def _send(self, conn: Conn, seq: int, sched: int, now: int) -> None:
        self._inflight += 1
        lag = now - sched
        if lag > self.live.lag_max_ns:
            self.live.lag_max_ns = lag
        conn.send(seq, sched, now, now + self._read_timeout_ns, self._request(seq, conn.keepalive))

    def _dial(self, seq: int, sched: int, now: int, keepalive: bool) -> None:
        route = None
        if self._routes is None:
            route = self.resolver.pick()
            if route is None:
                if keepalive:
                    self._pool_size -= 1
                self._refused_no_endpoint(seq, sched, now, now)
                return
        self._inflight += 1
        lag = now - sched
        if lag > self.live.lag_max_ns:
            self.live.lag_max_ns = lag
        task = self._loop.create_task(self._connect(route, seq, sched, now, keepalive))
        self._dialing[task] = (seq, sched, now, route.pod if route is not None else None)
        task.add_done_callback(self._dial_done)

    def _dial_done(self, task: asyncio.Task) -> None:
        self._dialing.pop(task, None)

    def _refused_no_endpoint(self, seq: int, sched: int, sent: int, ended: int) -> None:
        self._record(seq, sched, sent, ended, _REFUSED, 0, _errno.ECONNREFUSED,
                     "no ready endpoint to route to", -1, False, None, None)

    async def _connect(self, route, seq: int, sched: int, sent: int, keepalive: bool) -> None:
        conn_id = self._next_conn
        self._next_conn += 1
        if route is None:  # a worker process: ask the parent's resolver (harness.traffic.routes)
            try:
                async with asyncio.timeout(self.config.read_timeout):
                    route = await self._routes.pick()
            except TimeoutError:  # the harness, not the service, was too slow: never sent
                self._given_up(seq, sched, keepalive, "no route from the harness within the read timeout")
                return
            if route is None:  # no ready endpoint in the parent's view
                self._given_up(seq, sched, keepalive, None, sent)
                return
            # The dial starts now: waiting for the route is the harness's lag (send lag),
            # never connect time, so a busy harness does not look like a slow service.
            sent = self._now()
        conn = self._conn_class(self, conn_id, route.pod, keepalive,
                                pod_header_needles=self.target.pod_header_needles, pod_names=self.pod_names,
                                chain=self._chain if keepalive else None)
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                await self._loop.create_connection(lambda: conn, route.host, route.port)
        except asyncio.CancelledError:
            raise  # by the engine's abort or shutdown, which recorded the request (_record_unfinished)
        except BaseException as exc:  # noqa: BLE001 - every failure is data
            outcome, err, text = classify_error(exc, "connect")
            self._inflight -= 1
            if keepalive:
                self._pool_size -= 1
            self._record(seq, sched, sent, self._now(), OUTCOME_CODE[outcome], 0, err, text, conn_id, False,
                         None, route.pod)
            self._slot_freed()
            return
        self._all.add(conn)
        self.live.connections = len(self._all)
        # The dial's in-flight count carries over to the request it was made for.
        if conn.closed:  # lost between connect and now
            self._lost_inflight(conn, None, "send", seq, sched, sent)
            return
        conn.send(seq, sched, sent, self._now() + self._read_timeout_ns, self._request(seq, conn.keepalive))

    def _given_up(self, seq: int, sched: int, keepalive: bool, why: str | None, sent: int = -1) -> None:
        """A dial that did not happen: refused (``why`` None: no ready endpoint)
        or dropped by the harness (``why``)."""
        self._inflight -= 1
        if keepalive:
            self._pool_size -= 1
        if why is None:
            self._refused_no_endpoint(seq, sched, sent, self._now())
        else:
            self._record(seq, sched, -1, self._now(), _DROPPED, 0, 0, why, -1, False, None, None)
        self._slot_freed()

    def pod_name(self, raw: bytes) -> str:
        """Decode (once per distinct value) the pod header's raw bytes."""
        name = self.pod_names.get(raw)
        if name is None:
            name = self.pod_names[raw] = raw.strip().decode("latin-1")
        return name

    # -- called by Conn -----------------------------------------------------------
    def conn_done(self, conn: Conn) -> None:
        now = self._mono() - self._anchor
        status = conn.status
        code = _OK if status < 400 else _status_code(status)
        # inlined RequestWriter.add (see its INT_FIELDS order): this runs per response
        self._row_ints((conn.seq, conn.sched_ns, conn.sent_ns, now, code, status, 0, conn.conn_id, conn.served > 0))
        self._row_error(None)
        self._row_pod(conn.pod)
        self._row_route(conn.route_pod)
        self.live.counts[code] += 1
        conn.finish(answered=True)
        self._inflight -= 1
        if conn.keepalive and conn.reusable and not self._stopping:
            if not self._interval and not self._waiting and not self._new_ratio:
                # closed loop, keep-alive only: the freed connection carries the next
                # request at once (no pool or pump round trip: this is the capacity path)
                seq = self._seq
                self._seq = seq + self.workers
                self._inflight += 1
                self.live.issued += 1
                conn.send(seq, now, now, now + self._read_timeout_ns, self._keepalive_request(seq))
                return
            self._reuse(conn, now)
        else:
            self._retire(conn)
            conn.close()
        if self._stopping:
            self._maybe_done()
        elif self._interval:
            # Requests now due go out at once, unless others already wait for a connection:
            # then they would only join that queue, which the pump's next wake-up does (a
            # pump per response while behind cost more than the response, a cascade).
            if now >= self._next_sched and not self._waiting:
                if self._pump_timer is not None:
                    self._pump_timer.cancel()
                self._pump()
        else:
            self._fill(now)

    def conn_lost(self, conn: Conn, exc: BaseException | None) -> None:
        self._all.discard(conn)
        self.live.connections = len(self._all)
        if conn.seq >= 0:
            self._lost_inflight(conn, exc, "read", conn.seq, conn.sched_ns, conn.sent_ns)
            return
        if conn in self._idle:
            self._idle.remove(conn)
        self._retire(conn)
        self._slot_freed()

    def conn_failed(self, conn: Conn, exc: BaseException, stage: str) -> None:
        """A protocol error on a request in flight (malformed response)."""
        outcome, err, text = classify_error(exc, stage, got_bytes=True)
        self._record(conn.seq, conn.sched_ns, conn.sent_ns, self._now(), OUTCOME_CODE[outcome], conn.status_so_far(),
                     err, text, conn.conn_id, conn.served > 0, conn.pod, conn.route_pod)
        conn.finish(answered=False)
        self._inflight -= 1
        self._retire(conn)
        conn.abort()
        self._slot_freed()

    # -- internals -------------------------------------------------------------
    def _lost_inflight(self, conn: Conn, exc, stage: str, seq: int, sched: int, sent: int) -> None:
        outcome, err, text = classify_error(exc, stage, got_bytes=conn.got_bytes)
        self._record(seq, sched, sent, self._now(), OUTCOME_CODE[outcome], conn.status_so_far(), err, text,
                     conn.conn_id, conn.served > 0, conn.pod, conn.route_pod)
        conn.finish(answered=False)
        self._inflight -= 1
        self._retire(conn)
        self._slot_freed()

    def _retire(self, conn: Conn) -> None:
        """Take a keep-alive connection out of the pool (once)."""
        if conn.leave_pool():
            self._pool_size -= 1

    def _next_waiter(self, now: int) -> tuple[int, int] | None:
        """The oldest request still worth sending; those that waited longer
        than the read timeout for a connection are recorded dropped."""
        waiting = self._waiting
        while waiting:
            seq, sched = waiting.popleft()
            if now - sched <= self._read_timeout_ns:
                return seq, sched
            self._record(seq, sched, -1, now, _DROPPED, 0, 0, "waited longer than the read timeout for a connection",
                         -1, False, None, None)
        return None

    def _reuse(self, conn: Conn, now: int) -> None:
        nxt = self._next_waiter(now)
        if nxt is None:
            self._idle.append(conn)
        else:
            self._send(conn, nxt[0], nxt[1], now)

    def _slot_freed(self) -> None:
        """A request finished or a pooled connection went away: serve waiters,
        keep a closed loop busy, or finish a stop."""
        if self._waiting and self._pool_size < self.config.connections and not self._stopping_hard():
            now = self._now()
            nxt = self._next_waiter(now)
            if nxt is not None:
                self._pool_size += 1
                self._dial(nxt[0], nxt[1], now, True)
        if self._stopping:
            self._maybe_done()
        elif not self._interval:
            self._fill(self._now())

    def _stopping_hard(self) -> bool:
        return self._done is None or self._done.done()

    def _record(self, seq, sched, sent, ended, code, status, err, text, conn_id, reused, pod, route_pod) -> None:
        self.writer.add(seq, sched, sent, ended, code, status, err, text, conn_id, reused, pod, route_pod)
        self.live.counts[code] += 1
