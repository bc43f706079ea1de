"""Run the engine in N worker processes, each with its own event loop and
connections, on the one run clock (CLOCK_MONOTONIC is system-wide), then
summarise their merged records.

Worker ``w`` of ``n`` sends the global seqs ``w, w+n, ...``; all start at a
common ``start_ns`` a little in the future so their schedules line up.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import signal
from pathlib import Path
from typing import Callable

from harness.model.clock import RunClock
from harness.model.outcome import OUTCOMES
from harness.traffic.engine import Engine, EngineConfig, EngineResult, LiveStats


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_on_fast_loop(coro_fn: Callable[[], object]):
    """Run ``coro_fn()`` on uvloop (or asyncio) until it completes."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coro_fn())


#: shared progress slots per worker: issued, completed, lag_max_ns, connections, then counts by outcome
LIVE_SLOTS = 4 + len(OUTCOMES)


def publish_live(live: LiveStats, shared) -> None:
    shared[0] = live.issued
    shared[1] = live.completed
    shared[2] = max(shared[2], live.lag_max_ns)
    live.lag_max_ns = 0
    shared[3] = live.connections
    shared[4:] = live.counts


def _worker_main(config: EngineConfig, clock: dict, out_dir: str, worker: int, workers: int,
                 conn, shared) -> None:
    clk = RunClock.from_dict(clock)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until the loop handles it
    conn.send("ready")  # imports done; the parent picks one start time for all
    start_ns = conn.recv()

    async def main() -> EngineResult:
        engine = Engine(config, clock=clk, out_dir=out_dir, worker=worker, workers=workers, start_ns=start_ns)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, engine.stop)
        loop.add_signal_handler(signal.SIGTERM, engine.stop)

        def tick():
            publish_live(engine.live, shared)
            loop.call_later(0.25, tick)

        tick()
        return await engine.run()

    result = run_on_fast_loop(main)
    conn.send(result)
    conn.close()


def run_workers(config: EngineConfig, *, clock: RunClock, out_dir: str | Path, workers: int,
                start_delay_s: float = 0.05, on_tick: Callable[[list], None] | None = None) -> list[EngineResult]:
    """Blocking: run ``workers`` processes to the end of ``config.duration``.
    ``on_tick(shared_slots)`` is called about 4 times a second for progress."""
    ctx = mp.get_context("spawn")
    procs = []
    slots = []
    for w in range(workers):
        parent, child = ctx.Pipe(duplex=True)
        shared = ctx.Array("q", LIVE_SLOTS, lock=False)
        p = ctx.Process(target=_worker_main, name=f"engine-worker-{w}",
                        args=(config, clock.as_dict(), str(out_dir), w, workers, child, shared), daemon=True)
        p.start()
        child.close()
        procs.append((p, parent))
        slots.append(shared)
    results: list[EngineResult] = []
    try:
        for p, parent in procs:
            if not parent.poll(60) or parent.recv() != "ready":
                raise RuntimeError(f"engine worker {p.name} did not start")
        start_ns = clock.now() + int(start_delay_s * 1e9)
        for _, parent in procs:
            parent.send(start_ns)
        for p, parent in procs:
            while not parent.poll(0.25):
                if on_tick:
                    on_tick(slots)
                if not p.is_alive() and not parent.poll(0):
                    break
            try:
                results.append(parent.recv())
            except EOFError:
                pass  # the worker died; its records so far are on disk
            p.join()
    except KeyboardInterrupt:
        # Ask every worker to stop scheduling and flush; give in-flight requests their timeout.
        for p, _ in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGINT)
        for p, parent in procs:
            p.join(config.read_timeout + 3)
        raise
    finally:
        for p, _ in procs:
            if p.is_alive():
                p.kill()
                p.join(2)
    return results
