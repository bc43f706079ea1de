"""Engine workers in N processes, each with its own event loop and
connections, on the one run clock (CLOCK_MONOTONIC is system-wide).

Worker ``w`` of ``n`` sends the global seqs ``w, w+n, ...``; all start at a
common ``start_ns`` a little in the future so their schedules line up. The
parent drives them from its own event loop (``WorkerPool.run``), so the same
code serves ``load`` and ``run``: it answers each worker's route questions
with the platform's resolver (harness.traffic.routes), reads their progress
from shared counters, and tells them to stop (drain) or abort over a pipe.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import signal
from multiprocessing.connection import Connection
from pathlib import Path

import anyio

from harness.model.clock import RunClock
from harness.model.outcome import OUTCOMES
from harness.model.routing import Resolver
from harness.traffic.engine import Engine, EngineConfig, EngineResult, LiveStats
from harness.traffic.routes import RouteClient, serve_routes

#: shared progress slots per worker: issued, completed, lag_max_ns, connections, then counts by outcome
LIVE_SLOTS = 4 + len(OUTCOMES)
STOP, ABORT, READY = "stop", "abort", "ready"


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_on_fast_loop(coro_fn):
    """Run ``coro_fn()`` on uvloop (or asyncio) until it completes."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coro_fn())


def publish_live(live: LiveStats, shared) -> None:
    shared[0] = live.issued
    shared[1] = live.completed
    shared[2] = max(shared[2], live.lag_max_ns)
    live.lag_max_ns = 0
    shared[3] = live.connections
    shared[4:] = live.counts


def _worker_main(config: EngineConfig, clock: dict, out_dir: str, worker: int, workers: int,
                 control: Connection, route_conn: Connection | None, shared) -> None:
    # Ctrl-C reaches the whole process group: the parent decides (stop, then abort).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    clk = RunClock.from_dict(clock)
    control.send(READY)  # imports done; the parent picks one start time for all
    start_ns = control.recv()
    if not isinstance(start_ns, int):  # stopped before it started: nothing was sent, nothing to record
        control.close()
        return

    async def main() -> EngineResult:
        routes = RouteClient(route_conn) if route_conn is not None else None
        engine = Engine(config, clock=clk, out_dir=out_dir, worker=worker, workers=workers, routes=routes,
                        start_ns=start_ns)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, engine.stop)

        def on_control() -> None:
            try:
                msg = control.recv()
            except (EOFError, OSError):  # the parent is gone: stop, then abort what is left
                loop.remove_reader(control.fileno())
                msg = ABORT
            engine.stop()
            if msg == ABORT:
                engine.stop()  # the second call aborts what is in flight

        loop.add_reader(control.fileno(), on_control)

        def tick() -> None:
            publish_live(engine.live, shared)
            loop.call_later(0.25, tick)

        tick()
        try:
            return await engine.run()
        finally:
            publish_live(engine.live, shared)
            loop.remove_reader(control.fileno())
            if routes is not None:
                routes.close()

    result = run_on_fast_loop(main)
    control.send(result)
    control.close()


async def _recv(conn: Connection, timeout: float | None = None):
    """The next message on ``conn`` without blocking the loop; EOFError when
    the other end is gone (the worker died)."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def ready() -> None:
        if fut.done():
            return
        try:
            fut.set_result(conn.recv())
        except (EOFError, OSError) as exc:
            fut.set_exception(EOFError(str(exc)))

    loop.add_reader(conn.fileno(), ready)
    try:
        async with asyncio.timeout(timeout):
            return await fut
    finally:
        loop.remove_reader(conn.fileno())


class WorkerPool:
    """N engine processes driven from the caller's event loop."""

    def __init__(self, config: EngineConfig, *, clock: RunClock, out_dir: str | Path, workers: int,
                 resolver: Resolver | None = None, start_delay_s: float = 0.05, start_timeout_s: float = 60.0):
        self.config = config
        self.clock = clock
        self.out_dir = str(out_dir)
        self.workers = workers
        self.resolver = resolver
        self.start_delay_s = start_delay_s
        self.start_timeout_s = start_timeout_s
        self.slots: list = []
        self.started = asyncio.Event()  # every worker has its start time
        self._procs: list[tuple[mp.Process, Connection, Connection | None]] = []
        self._stopped_before_start: str | None = None

    def tell(self, msg: str) -> None:
        """STOP: stop scheduling, let in-flight requests finish; ABORT: abort them."""
        if not self.started.is_set():
            self._stopped_before_start = msg  # the workers are told instead of their start time
            return
        for p, control, _ in self._procs:
            if p.is_alive():
                try:
                    control.send(msg)
                except OSError:
                    pass

    async def run(self) -> list[EngineResult]:
        """Start the workers, wait for all of them; the records are on disk.
        Cancelled: the workers abort, flush and exit (killed if they do not)."""
        ctx = mp.get_context("spawn")
        loop = asyncio.get_running_loop()
        for w in range(self.workers):
            parent, child = ctx.Pipe(duplex=True)
            route_parent = route_child = None
            if self.resolver is not None:
                route_parent, route_child = ctx.Pipe(duplex=True)
            shared = ctx.Array("q", LIVE_SLOTS, lock=False)
            p = ctx.Process(target=_worker_main, name=f"engine-worker-{w}", daemon=True,
                            args=(self.config, self.clock.as_dict(), self.out_dir, w, self.workers, child,
                                  route_child, shared))
            p.start()
            child.close()
            if route_child is not None:
                route_child.close()
            self._procs.append((p, parent, route_parent))
            self.slots.append(shared)
        results: list[EngineResult] = []
        try:
            for p, control, _ in self._procs:
                if await _recv(control, self.start_timeout_s) != READY:
                    raise RuntimeError(f"engine worker {p.name} did not start")
            for _, _, route_conn in self._procs:
                if route_conn is not None:
                    serve_routes(loop, route_conn, self.resolver)
            start_ns = self.clock.now() + int(self.start_delay_s * 1e9)
            for _, control, _ in self._procs:
                control.send(self._stopped_before_start or start_ns)
            self.started.set()
            for p, control, _ in self._procs:
                try:
                    results.append(await _recv(control))
                except EOFError:
                    pass  # the worker died; its records so far are on disk
        except BaseException:
            self.tell(ABORT)
            raise
        finally:
            with anyio.CancelScope(shield=True):  # a cancelled run still reaps its workers
                await self._reap(loop)
        return results

    async def _reap(self, loop: asyncio.AbstractEventLoop) -> None:
        for p, control, route_conn in self._procs:
            if route_conn is not None:
                loop.remove_reader(route_conn.fileno())
            deadline = loop.time() + 3.0
            while p.is_alive() and loop.time() < deadline:
                await asyncio.sleep(0.02)
            if p.is_alive():
                p.kill()
            p.join(2)
            control.close()
            if route_conn is not None:
                route_conn.close()
