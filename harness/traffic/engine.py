"""The open-loop engine: a fixed schedule, a keep-alive pool and/or a new
connection per request, one record per request, streamed to disk.

Hot path rules: no coroutine, future or timer per request on a keep-alive
connection; timeouts are found by a periodic sweep; records are appended to
column buffers and flushed as Arrow batches every ``flush_interval``.

A request that is due while every keep-alive connection is busy waits for
one (the wait shows as send lag and as latency, which count from the
scheduled time); it is recorded ``dropped`` when the in-flight cap is full
or when it waited longer than the read timeout. New connections go where
the resolver says (the platform's view of ready endpoints); ``None`` from
the resolver is recorded as refused, as kube-proxy rejects it on a cluster.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import errno as _errno
import gc
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import BadInput
from harness.model.clock import RunClock
from harness.model.outcome import OUTCOME_CODE, OUTCOMES, Outcome
from harness.model.requests import RequestWriter
from harness.model.routing import Resolver, StaticResolver
from harness.traffic.classify import classify_error
from harness.traffic.http1 import Conn, Target
from harness.traffic.schedule import scheduled_ns, uses_new_connection

if TYPE_CHECKING:  # pragma: no cover
    from harness.traffic.routes import RouteClient

_OK = OUTCOME_CODE[Outcome.OK]
_DROPPED = OUTCOME_CODE[Outcome.DROPPED]
_REFUSED = OUTCOME_CODE[Outcome.REFUSED]
_READ_TIMEOUT = OUTCOME_CODE[Outcome.READ_TIMEOUT]
_OTHER = OUTCOME_CODE[Outcome.OTHER]
_STATUS_CODE = {}  # status -> outcome code, filled lazily


def _status_code(status: int) -> int:
    code = _STATUS_CODE.get(status)
    if code is None:
        from harness.model.outcome import outcome_for_status

        code = _STATUS_CODE[status] = OUTCOME_CODE[outcome_for_status(status)]
    return code


@dataclasses.dataclass
class EngineConfig:
    url: str
    rate: float = 0.0  # req/s; 0 = closed loop (as fast as the connections allow)
    duration: float | None = None  # seconds; None = until stop()
    connections: int = 16  # keep-alive pool size (and closed-loop concurrency)
    new_connection_ratio: float = 0.0  # share of requests on a fresh connection
    connect_timeout: float = 1.0
    read_timeout: float = 5.0
    max_inflight: int = 512
    method: str = "GET"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    pod_header: str = "X-Pod-Name"
    flush_interval: float = 0.5

    @classmethod
    def from_traffic(cls, url: str, traffic: Any, duration: float | None = None) -> "EngineConfig":
        """From a scenario's ``traffic`` section (harness.model.scenario.Traffic)."""
        return cls(url=url, rate=traffic.rate, duration=duration, connections=traffic.connections,
                   new_connection_ratio=traffic.new_connection_ratio, connect_timeout=traffic.connect_timeout,
                   read_timeout=traffic.read_timeout, max_inflight=traffic.max_inflight, method=traffic.method,
                   headers=dict(traffic.headers), pod_header=traffic.pod_header)

    def check(self) -> None:
        problems = []
        if self.rate < 0:
            problems.append(f"rate {self.rate}: must be >= 0 (0 = closed loop)")
        if self.duration is not None and self.duration <= 0:
            problems.append(f"duration {self.duration}: must be > 0 seconds")
        if self.connections < 1:
            problems.append(f"connections {self.connections}: must be >= 1")
        if not 0 <= self.new_connection_ratio <= 1:
            problems.append(f"new connection ratio {self.new_connection_ratio}: must be within 0..1")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            problems.append("timeouts must be > 0 seconds")
        if self.max_inflight < 1:
            problems.append(f"max in-flight {self.max_inflight}: must be >= 1")
        if problems:
            raise BadInput("bad traffic settings: " + "; ".join(problems))
        Target(self.url, method=self.method, headers=self.headers, pod_header=self.pod_header)


class LiveStats:
    """Counters the progress display reads while the engine runs."""

    __slots__ = ("counts", "issued", "lag_max_ns", "inflight", "waiting", "connections")

    def __init__(self) -> None:
        self.counts = [0] * len(OUTCOMES)
        self.issued = 0
        self.lag_max_ns = 0
        self.inflight = 0
        self.waiting = 0
        self.connections = 0

    @property
    def completed(self) -> int:
        return sum(self.counts)

    @property
    def outcomes(self) -> dict[str, int]:
        return {OUTCOMES[i].value: c for i, c in enumerate(self.counts) if c}

    @property
    def failed(self) -> int:
        return self.completed - self.counts[_OK]

    @property
    def dropped(self) -> int:
        return self.counts[_DROPPED]

    def take_lag_max_ms(self) -> float:
        v, self.lag_max_ns = self.lag_max_ns, 0
        return v / 1e6


@dataclasses.dataclass
class EngineResult:
    worker: int
    path: Path
    start_ns: int
    end_ns: int  # when scheduling stopped
    rows: int
    interrupted: bool
    cpu_s: float = 0.0  # process CPU time spent while the engine ran


class Engine:
    """One worker: one event loop, its own connections, one records file."""

    def __init__(self, config: EngineConfig, *, clock: RunClock, out_dir: str | Path, worker: int = 0,
                 workers: int = 1, resolver: Resolver | None = None, routes: "RouteClient | None" = None,
                 start_ns: int | None = None):
        config.check()
        self.config = config
        self.clock = clock
        self.worker = worker
        self.workers = workers
        self.target = Target(config.url, method=config.method, headers=config.headers, pod_header=config.pod_header)
        self.resolver = resolver or StaticResolver(self.target.host, self.target.port)
        self._routes = routes  # a worker process: routes come from the parent's resolver
        self.pod_header_needles = self.target.pod_header_needles
        self._req_prefix = self.target.prefix
        self._req_keepalive = self.target.suffix_keepalive
        self._req_close = self.target.suffix_close
        self.path = Path(out_dir) / f"worker-{worker:03d}.arrow"
        self.writer = RequestWriter(self.path, worker=worker)
        # bound methods of the writer's buffers, for the per-response hot path
        self._row_ints = self.writer.ints.extend
        self._row_error = self.writer.error.append
        self._row_pod = self.writer.pod.append
        self._row_route = self.writer.route_pod.append
        self.live = LiveStats()
        self._start_ns = start_ns
        self._anchor = clock.monotonic_anchor_ns
        self.pod_names: dict[bytes, str] = {}  # raw header value -> pod name
        self._idle: list[Conn] = []
        self._all: set[Conn] = set()
        self._waiting: collections.deque[tuple[int, int]] = collections.deque()
        self._pool_size = 0
        self._inflight = 0
        self._dialing: dict[asyncio.Task, tuple] = {}  # dial task -> (seq, sched, sent, route_pod)
        self._next_conn = (worker << 40) + 1
        self._stopping = False
        self._done: asyncio.Future | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._pump_timer = None
        self._read_timeout_ns = int(config.read_timeout * 1e9)
        self._new_ratio = config.new_connection_ratio
        self.start_ns = 0
        self.end_ns = 0

    # -- public ---------------------------------------------------------------
    async def run(self) -> EngineResult:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._done = loop.create_future()
        cfg = self.config
        now = self._now()
        self.start_ns = self._start_ns if self._start_ns is not None else now
        self.end_ns = self.start_ns + int(cfg.duration * 1e9) if cfg.duration else 1 << 62
        self._seq = self.worker
        self._interval = 1e9 / cfg.rate if cfg.rate > 0 else 0.0
        self._next_sched = self._sched(self._seq) if cfg.rate > 0 else self.start_ns
        delay = max(0.0, (self.start_ns - now) / 1e9)
        self._pump_timer = loop.call_later(delay, self._pump)
        self._every(cfg.flush_interval, self._flush_tick)
        self._every(min(0.05, cfg.read_timeout / 4), self._sweep)
        interrupted = False
        # Everything allocated so far (pandas, pyarrow, the platform) is long-lived:
        # keep the cyclic GC from rescanning it mid-run, a multi-ms pause in the schedule.
        gc.freeze()
        cpu0 = time.process_time()
        try:
            await self._done
        except BaseException:
            interrupted = True
            raise
        finally:
            self._shutdown()
            if self.end_ns == 1 << 62 or interrupted:
                self.end_ns = min(self.end_ns, self._now())
        return EngineResult(self.worker, self.path, self.start_ns, self.end_ns, self.writer.rows_written, interrupted,
                            time.process_time() - cpu0)

    def stop(self) -> None:
        """Stop scheduling; requests in flight finish or time out, then run() returns.
        A second call aborts what is still in flight."""
        if self._stopping:
            self._abort_all()
            return
        self._stopping = True
        if self.end_ns > self._now():
            self.end_ns = self._now()
        if self._pump_timer is not None:
            self._pump_timer.cancel()
            self._pump_timer = None
        self._maybe_done()

    # -- schedule ---------------------------------------------------------------
    def _now(self) -> int:
        return time.monotonic_ns() - self._anchor

    def _sched(self, seq: int) -> int:
        return scheduled_ns(seq, start_ns=self.start_ns, rate=self.config.rate)

    def _pump(self) -> None:
        self._pump_timer = None
        if self._stopping:
            return
        now = self._now()
        if self._interval:
            nxt = self._next_sched
            step = self.workers
            end = self.end_ns
            while nxt <= now:
                if nxt >= end:
                    self.stop()
                    return
                self._issue(self._seq, nxt, now)
                self._seq += step
                nxt = self._sched(self._seq)
            self._next_sched = nxt
            if nxt >= end:
                self._pump_timer = self._loop.call_later(max(0.0, (end - now) / 1e9), self._end_of_schedule)
            else:
                # Timers tick in whole milliseconds (libuv); a shorter delay would spin
                # the loop. Requests due within the tick go out together on wake-up.
                self._pump_timer = self._loop.call_later(max(0.001, (nxt - now) / 1e9), self._pump)
        else:  # closed loop: keep every slot busy until the end
            if now >= self.end_ns:
                self.stop()
                return
            self._fill(now)
            if self.end_ns < 1 << 62:
                self._pump_timer = self._loop.call_later((self.end_ns - now) / 1e9, self._end_of_schedule)

    def _fill(self, now: int) -> None:
        cap = self.config.connections
        for _ in range(cap):  # bounded: a refusal without a connection frees its slot at once
            if self._inflight + len(self._waiting) >= cap:
                break
            self._issue(self._seq, now, now)
            self._seq += self.workers

    def _end_of_schedule(self) -> None:
        self._pump_timer = None
        if self._interval and self._next_sched < self.end_ns:
            self._pump()
            return
        self.stop()

    def _issue(self, seq: int, sched: int, now: int) -> None:
        self.live.issued += 1
        if self._new_ratio and uses_new_connection(seq, self._new_ratio):
            if self._inflight >= self.config.max_inflight:
                self._record(seq, sched, -1, now, _DROPPED, 0, 0, "in-flight cap reached", -1, False, None, None)
                return
            self._dial(seq, sched, now, False)
            return
        idle = self._idle
        if idle:
            self._send(idle.pop(), seq, sched, now)
        elif self._pool_size < self.config.connections:
            self._pool_size += 1
            self._dial(seq, sched, now, True)
        elif self._inflight + len(self._waiting) >= self.config.max_inflight:
            self._record(seq, sched, -1, now, _DROPPED, 0, 0, "in-flight cap reached", -1, False, None, None)
        else:
            self._waiting.append((seq, sched))

    # -- connections ------------------------------------------------------------
    def _send(self, conn: Conn, seq: int, sched: int, now: int) -> None:
        self._inflight += 1
        lag = now - sched
        if lag > self.live.lag_max_ns:
            self.live.lag_max_ns = lag
        conn.send(seq, sched, now, now + self._read_timeout_ns,
                  b"%b%d%b" % (self._req_prefix, seq, self._req_keepalive if conn.keepalive else self._req_close))

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
        conn = None
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                if route is None:  # asked of the parent process's resolver (harness.traffic.routes)
                    route = await self._routes.pick()
                if route is not None:
                    conn = Conn(self, conn_id, route.pod, keepalive)
                    await self._loop.create_connection(lambda: conn, route.host, route.port)
        except asyncio.CancelledError:
            raise  # by the engine's abort or shutdown, which recorded the request (_record_unfinished)
        except BaseException as exc:  # noqa: BLE001 - every failure is data
            outcome, err, text = classify_error(exc, "connect")
            self._inflight -= 1
            if keepalive:
                self._pool_size -= 1
            self._record(seq, sched, sent, self._now(), OUTCOME_CODE[outcome], 0, err, text, conn_id, False,
                         None, route.pod if route is not None else None)
            self._slot_freed()
            return
        if conn is None:  # no ready endpoint in the parent's view
            self._inflight -= 1
            if keepalive:
                self._pool_size -= 1
            self._refused_no_endpoint(seq, sched, sent, self._now())
            self._slot_freed()
            return
        self._all.add(conn)
        self.live.connections = len(self._all)
        # The dial's in-flight count carries over to the request it was made for.
        if conn.closed:  # lost between connect and now
            self._lost_inflight(conn, None, "send", seq, sched, sent)
            return
        conn.send(seq, sched, sent, self._now() + self._read_timeout_ns, self.target.request(seq, conn.keepalive))

    def pod_name(self, raw: bytes) -> str:
        """Decode (once per distinct value) the pod header's raw bytes."""
        name = self.pod_names.get(raw)
        if name is None:
            name = self.pod_names[raw] = raw.strip().decode("latin-1")
        return name

    # -- called by Conn -----------------------------------------------------------
    def conn_done(self, conn: Conn) -> None:
        now = time.monotonic_ns() - self._anchor
        status = conn.status
        code = _OK if status < 400 else _status_code(status)
        # inlined RequestWriter.add (see its INT_FIELDS order): this runs per response
        self._row_ints((conn.seq, conn.sched_ns, conn.sent_ns, now, code, status, 0, conn.conn_id, conn.served > 0))
        self._row_error(None)
        self._row_pod(conn.pod)
        self._row_route(conn.route_pod)
        self.live.counts[code] += 1
        conn.served += 1
        conn.seq = -1
        conn.head = None
        self._inflight -= 1
        if conn.keepalive and conn.reusable and not self._stopping:
            if not self._interval and not self._waiting and not self._new_ratio:
                # closed loop, keep-alive only: the freed connection carries the next
                # request at once (Conn.send and _send inlined: this is the capacity path)
                seq = self._seq
                self._seq = seq + self.workers
                self._inflight += 1
                self.live.issued += 1
                conn.seq = seq
                conn.sched_ns = conn.sent_ns = now
                conn.deadline_ns = now + self._read_timeout_ns
                conn.status = 0
                conn.pod = None
                conn.head = []
                conn.got_bytes = False
                conn.transport.write(b"%b%d%b" % (self._req_prefix, seq, self._req_keepalive))
                return
            self._reuse(conn, now)
        else:
            self._retire(conn)
            conn.transport.close()
        if self._stopping:
            self._maybe_done()
        elif self._interval:
            if now >= self._next_sched:
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
        conn.seq = -1
        self._inflight -= 1
        self._retire(conn)
        conn.transport.abort()
        self._slot_freed()

    # -- internals -------------------------------------------------------------
    def _lost_inflight(self, conn: Conn, exc, stage: str, seq: int, sched: int, sent: int) -> None:
        outcome, err, text = classify_error(exc, stage, got_bytes=conn.got_bytes)
        self._record(seq, sched, sent, self._now(), OUTCOME_CODE[outcome], conn.status_so_far(), err, text,
                     conn.conn_id, conn.served > 0, conn.pod, conn.route_pod)
        conn.seq = -1
        self._inflight -= 1
        self._retire(conn)
        self._slot_freed()

    def _retire(self, conn: Conn) -> None:
        """Take a keep-alive connection out of the pool (once)."""
        if conn.keepalive:
            conn.keepalive = False
            self._pool_size -= 1

    def _reuse(self, conn: Conn, now: int) -> None:
        waiting = self._waiting
        while waiting:
            seq, sched = waiting.popleft()
            if now - sched > self._read_timeout_ns:
                self._record(seq, sched, -1, now, _DROPPED, 0, 0, "waited longer than the read timeout for a connection",
                             -1, False, None, None)
                continue
            self._send(conn, seq, sched, now)
            return
        self._idle.append(conn)

    def _slot_freed(self) -> None:
        """A request finished or a pooled connection went away: serve waiters,
        keep a closed loop busy, or finish a stop."""
        if self._waiting and self._pool_size < self.config.connections and not self._stopping_hard():
            seq, sched = self._waiting.popleft()
            self._pool_size += 1
            self._dial(seq, sched, self._now(), True)
        if self._stopping:
            self._maybe_done()
        elif not self._interval:
            self._fill(self._now())

    def _stopping_hard(self) -> bool:
        return self._done is None or self._done.done()

    def _record(self, seq, sched, sent, ended, code, status, err, text, conn_id, reused, pod, route_pod) -> None:
        self.writer.add(seq, sched, sent, ended, code, status, err, text, conn_id, reused, pod, route_pod)
        self.live.counts[code] += 1

    def _maybe_done(self) -> None:
        if not self._stopping or self._done is None or self._done.done():
            return
        if self._inflight == 0 and not self._waiting and not self._dialing:
            self._done.set_result(None)

    def _sweep(self) -> None:
        now = self._now()
        for conn in [c for c in self._all if c.seq >= 0 and now > c.deadline_ns]:
            self._record(conn.seq, conn.sched_ns, conn.sent_ns, now, _READ_TIMEOUT, conn.status_so_far(),
                         _errno.ETIMEDOUT,
                         "no response before the read timeout", conn.conn_id, conn.served > 0, conn.pod,
                         conn.route_pod)
            conn.seq = -1
            self._inflight -= 1
            self._retire(conn)
            conn.transport.abort()
            self._slot_freed()
        waiting = self._waiting
        while waiting and now - waiting[0][1] > self._read_timeout_ns:
            seq, sched = waiting.popleft()
            self._record(seq, sched, -1, now, _DROPPED, 0, 0, "waited longer than the read timeout for a connection",
                         -1, False, None, None)
        self.live.inflight = self._inflight
        self.live.waiting = len(waiting)
        self._maybe_done()

    def _flush_tick(self) -> None:
        self.writer.flush()

    def _every(self, interval: float, fn) -> None:
        def tick():
            fn()
            if self._done is not None and not self._done.done():
                self._timers.append(self._loop.call_later(interval, tick))

        self._timers.append(self._loop.call_later(interval, tick))

    def _record_unfinished(self, why: str) -> None:
        """Abort or shutdown: every request not finished yet gets its record now,
        as dropped (the harness gave up on it; it is not the service's failure)."""
        now = self._now()
        while self._waiting:
            seq, sched = self._waiting.popleft()
            self._record(seq, sched, -1, now, _DROPPED, 0, 0, f"{why} while waiting for a connection", -1, False,
                         None, None)
        for task, (seq, sched, sent, route_pod) in list(self._dialing.items()):
            self._record(seq, sched, sent, now, _DROPPED, 0, 0, f"{why} while connecting", -1, False, None,
                         route_pod)
            task.cancel()
        self._dialing.clear()
        for conn in self._all:
            if conn.seq >= 0:
                self._record(conn.seq, conn.sched_ns, conn.sent_ns, now, _DROPPED, conn.status_so_far(), 0,
                             f"{why} before its response", conn.conn_id, conn.served > 0, conn.pod, conn.route_pod)
                conn.seq = -1
        self._inflight = 0

    def _abort_all(self) -> None:
        self._record_unfinished("aborted")
        for conn in list(self._all):
            if conn.transport is not None:
                conn.transport.abort()
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _shutdown(self) -> None:
        self._stopping = True  # nothing is issued any more, whatever ends the run (a cancel included)
        for t in self._timers:
            t.cancel()
        if self._pump_timer is not None:
            self._pump_timer.cancel()
        self._record_unfinished("cancelled")
        for conn in list(self._all):
            if conn.transport is not None:
                conn.transport.close()
        self.live.inflight = 0
        self.writer.close()
