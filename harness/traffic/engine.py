"""The open-loop engine: a fixed schedule, a keep-alive pool and/or a new
connection per request, one record per request, streamed to disk.

Hot path rules: no coroutine, future or timer per request on a keep-alive
connection; timeouts are found by a periodic sweep; records are appended to
column buffers and flushed as Arrow batches every ``flush_interval`` or
sooner, in small batches (FLUSH_ROWS); the open loop wakes on a precise
timer (harness.traffic.wakeup), not the loop's millisecond ticks.

A request that is due while every keep-alive connection is busy waits for
one (the wait shows as send lag and as latency, which count from the
scheduled time); it is recorded ``dropped`` when the in-flight cap is full
or when it waited longer than the read timeout. New connections go where
the resolver says (the platform's view of ready endpoints); ``None`` from
the resolver is recorded as refused, as kube-proxy rejects it on a cluster.

This module is the schedule side (run, stop, pump, sweep, abort); the
connection side is harness.traffic.connections; both are tested without
sockets on a virtual clock (tests/traffic/test_engine.py).
"""

from __future__ import annotations

import asyncio
import collections
import errno as _errno
import gc
import resource
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.model.clock import RunClock
from harness.model.outcome import OUTCOME_CODE, Outcome
from harness.model.requests import RequestWriter
from harness.model.routing import Resolver, StaticResolver
from harness.traffic.config import EngineConfig, EngineResult, LiveStats
from harness.traffic import connections
from harness.traffic.connections import ConnectionSide
from harness.traffic.http1 import Conn, Target
from harness.traffic.schedule import scheduled_ns, uses_new_connection
from harness.traffic.wakeup import PreciseTimer

if TYPE_CHECKING:  # pragma: no cover
    from harness.traffic.routes import RouteClient

__all__ = ["Engine", "EngineConfig", "EngineResult", "LiveStats"]

_OK = OUTCOME_CODE[Outcome.OK]
_DROPPED = OUTCOME_CODE[Outcome.DROPPED]
_READ_TIMEOUT = OUTCOME_CODE[Outcome.READ_TIMEOUT]

#: The open loop wakes on a timerfd (harness.traffic.wakeup) rather than the loop's
#: millisecond timers, at the next request's time but at most once per WAKE_QUANTUM_NS
#: (requests due within it go out together): a send-lag floor of 0.2 ms, not 1 ms,
#: for at most 5,000 wake-ups a second. False: the loop's timers (bench/lagtrace.py).
PRECISE_TIMER = True
WAKE_QUANTUM_NS = 200_000
#: The sweep flushes the records once this many rows wait, besides every flush_interval:
#: a flush holds the loop ~0.1 ms + 0.1 us a row (more with cold caches), so at 10k
#: req/s half a second of rows (0.5-0.7 ms, at worst 4) delayed the requests due meanwhile.
FLUSH_ROWS = 256


#: descriptors an engine needs beside its requests' sockets (records file, loop, pipes)
SPARE_FDS = 64


def raise_open_files_limit(need: int) -> int:
    """Raise this process's soft limit on open files towards ``need`` (at most
    the hard limit), as Go's runtime does at start: ``maxInflight`` requests
    hold that many sockets, and a soft limit of 1024 (common) would fail the
    rest with EMFILE. Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft


class Engine(ConnectionSide):
    """One worker: one event loop, its own connections, one records file."""

    def __init__(self, config: EngineConfig, *, clock: RunClock, out_dir: str | Path, worker: int = 0,
                 workers: int = 1, resolver: Resolver | None = None, routes: "RouteClient | None" = None,
                 start_ns: int | None = None):
        config.check()
        raise_open_files_limit(config.max_inflight + config.connections + SPARE_FDS)
        self.config = config
        self.clock = clock
        self.worker = worker
        self.workers = workers
        self.target = Target(config.url, method=config.method, headers=config.headers, pod_header=config.pod_header)
        self.resolver = resolver or StaticResolver(self.target.host, self.target.port)
        self._routes = routes  # a worker process: routes come from the parent's resolver
        self._request = self.target.request  # the request bytes, built in one place
        self._keepalive_request = self.target.keepalive_request  # the same, for the capacity path
        self.path = Path(out_dir) / f"worker-{worker:03d}.arrow"
        self.writer = RequestWriter(self.path, worker=worker)
        # bound methods of the writer's buffers, for the per-response hot path
        self._row_ints = self.writer.ints.extend
        self._row_error = self.writer.error.append
        self._row_pod = self.writer.pod.append
        self._row_route = self.writer.route_pod.append
        self.live = LiveStats()
        self._start_ns = start_ns
        self._now = clock.now
        self._mono = clock.source  # hot path: self._mono() - self._anchor is clock.now() inlined
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
        self._wakeup: PreciseTimer | None = None
        self._read_timeout_ns = int(config.read_timeout * 1e9)
        self._new_ratio = config.new_connection_ratio
        # the compiled connection when built (harness.traffic.hotpath), else http1.Conn
        self._hotpath = connections.HOTPATH
        self._conn_class = self._hotpath.Conn if self._hotpath is not None else Conn
        self._chain = None  # hotpath.Chain on a closed loop of keep-alive connections
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
        if self._hotpath is not None and cfg.rate == 0 and not self._new_ratio:
            self._chain = self._hotpath.Chain(
                step=self.workers, read_timeout_ns=self._read_timeout_ns, anchor=self._anchor, waiting=self._waiting,
                mono=self._mono, prefix=self.target.prefix, suffix=self.target.suffix_keepalive, writer=self.writer,
                live=self.live, ok_code=_OK)
        if PRECISE_TIMER and cfg.rate > 0 and self._mono is time.monotonic_ns:  # the real clock, not a test's
            self._wakeup = PreciseTimer.create(loop)
        if self._wakeup is not None:
            self._pump_timer = self._wakeup.call_at(self._anchor + self.start_ns, self._pump)
        else:
            self._pump_timer = loop.call_later(max(0.0, (self.start_ns - now) / 1e9), self._pump)
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
        if self._chain is not None:
            self._chain.open = False
        if self.end_ns > self._now():
            self.end_ns = self._now()
        if self._pump_timer is not None:
            self._pump_timer.cancel()
            self._pump_timer = None
        self._maybe_done()

    # -- schedule ---------------------------------------------------------------
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
            elif self._wakeup is not None:
                self._pump_timer = self._wakeup.call_at(self._anchor + max(nxt, now + WAKE_QUANTUM_NS), self._pump)
            else:
                # The loop's timers tick in whole milliseconds (libuv); a shorter delay would
                # spin the loop. Requests due within the tick go out together on wake-up.
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

    def _maybe_done(self) -> None:
        if not self._stopping or self._done is None or self._done.done():
            return
        if self._inflight == 0 and not self._waiting and not self._dialing:
            self._done.set_result(None)

    def _sweep(self) -> None:
        if self._chain is not None:
            self._chain.settle()
        now = self._now()
        for conn in [c for c in self._all if c.seq >= 0 and now > c.deadline_ns]:
            self._record(conn.seq, conn.sched_ns, conn.sent_ns, now, _READ_TIMEOUT, conn.status_so_far(),
                         _errno.ETIMEDOUT,
                         "no response before the read timeout", conn.conn_id, conn.served > 0, conn.pod,
                         conn.route_pod)
            conn.finish(answered=False)
            self._inflight -= 1
            self._retire(conn)
            conn.abort()
            self._slot_freed()
        waiting = self._waiting
        while waiting and now - waiting[0][1] > self._read_timeout_ns:
            seq, sched = waiting.popleft()
            self._record(seq, sched, -1, now, _DROPPED, 0, 0, "waited longer than the read timeout for a connection",
                         -1, False, None, None)
        self.live.inflight = self._inflight
        self.live.waiting = len(waiting)
        if len(self.writer) >= FLUSH_ROWS:
            self.writer.flush()
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
                conn.finish(answered=False)
        self._inflight = 0

    def _abort_all(self) -> None:
        self._record_unfinished("aborted")
        for conn in list(self._all):
            conn.abort()
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _shutdown(self) -> None:
        self._stopping = True  # nothing is issued any more, whatever ends the run (a cancel included)
        if self._chain is not None:
            self._chain.open = False
        for t in self._timers:
            t.cancel()
        if self._pump_timer is not None:
            self._pump_timer.cancel()
        if self._wakeup is not None:
            self._wakeup.close()
        self._record_unfinished("cancelled")
        if self._chain is not None:
            self._chain.settle()
        for conn in list(self._all):
            conn.close()
        self.live.inflight = 0
        self.writer.close()
