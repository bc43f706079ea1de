"""One traffic session, the one way traffic is run, by `run` and by `load`:
it starts the engine (in this process, or in ``workers`` processes), owns
the stop policy, and gives the progress display one snapshot of the counters.

Stop policy (the same for Ctrl-C on `load` and for the end of a rollout):
the first ``stop()`` stops scheduling and lets the requests in flight finish
(bounded by their read timeout); the second aborts what is still in flight.
Either way every request issued gets its record, and the records are on disk
when ``run()`` returns or is cancelled.

Beside the engines, a probe (harness.traffic.hostspeed) records the windows
in which the host ran this machine slowly, so a run that fell behind can say
whether the host was the cause (``host_speed()``, the manifest's
``generator.host``).

Routing with workers: an in-process engine calls the platform's resolver on
the caller's event loop; worker processes ask it over a pipe, answered on the
same loop at the moment they dial (harness.traffic.routes), so ``run``
honours ``traffic.workers`` with the local platform's kube-proxy view too.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import anyio

from harness.model.clock import RunClock
from harness.model.routing import Resolver
from harness.model.summary import HostSpeed
from harness.traffic.engine import Engine, EngineConfig, EngineResult
from harness.traffic.hostspeed import HostSpeedProbe
from harness.traffic.progress import Progress, Snapshot
from harness.traffic.workers import ABORT, STOP, WorkerPool, run_on_fast_loop

PROGRESS_EVERY_S = 0.25
#: The host probe's own bound; it also stops with the session, or when the harness is gone.
HOST_PROBE_MAX_S = 12 * 3600


class TrafficSession:
    def __init__(self, config: EngineConfig, *, clock: RunClock, out_dir: str | Path, workers: int = 1,
                 resolver: Resolver | None = None):
        config.check()
        self.config = config
        self.clock = clock
        self.out_dir = Path(out_dir)
        self.workers = max(1, int(workers))
        self.resolver = resolver
        self.results: list[EngineResult] = []
        self.interrupted = False
        self._stops = 0
        self._engine: Engine | None = None
        self._pool: WorkerPool | None = None
        self._done = asyncio.Event()
        self._started = asyncio.Event()
        self._host = HostSpeedProbe(HOST_PROBE_MAX_S)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def snapshot(self) -> Snapshot | None:
        if self._engine is not None:
            return Snapshot.from_live(self._engine.live)
        if self._pool is not None:
            return Snapshot.from_shared(self._pool.slots)
        return None

    def host_speed(self) -> HostSpeed | None:
        """The windows in which the host ran this machine slowly while the
        traffic ran (harness.model.summary.HostSpeed), on the run clock."""
        if self._host.off:
            return None
        return self._host.section(self.clock.monotonic_anchor_ns)

    def problems(self) -> list[str]:
        """Why the traffic could not see (the runner makes the run inconclusive);
        the harness's own engines report falling behind through their records."""
        return []

    def stop(self) -> None:
        """First call: stop scheduling, drain; later calls: abort in-flight requests."""
        self._stops += 1
        if self._engine is not None:
            self._engine.stop()
        elif self._pool is not None:
            self._pool.tell(STOP if self._stops == 1 else ABORT)

    def interrupt(self) -> None:
        """Ctrl-C: the stop policy, and the session is marked interrupted."""
        self.interrupted = True
        self.stop()

    async def run(self) -> list[EngineResult]:
        """Run until the schedule ends or ``stop()``; cancelled, the traffic is
        aborted and what was recorded is flushed."""
        self._host.start()
        try:
            if self.workers == 1:
                self._engine = Engine(self.config, clock=self.clock, out_dir=self.out_dir, resolver=self.resolver)
                if self._stops:  # stopped before it started
                    self._engine.stop()
                self._started.set()
                self.results = [await self._engine.run()]
            else:
                self._pool = WorkerPool(self.config, clock=self.clock, out_dir=self.out_dir, workers=self.workers,
                                        resolver=self.resolver)
                if self._stops:
                    self._pool.tell(STOP)
                pool_started = asyncio.ensure_future(self._pool.started.wait())
                pool_started.add_done_callback(lambda _: self._started.set())
                try:
                    self.results = await self._pool.run()
                finally:
                    pool_started.cancel()
        finally:
            self._host.stop()
            self._done.set()
        return self.results

    async def started(self) -> None:
        """Return once the traffic has its start time (worker processes take
        seconds to start on a busy machine: a run's baseline waits for them),
        or the session ended without starting."""
        done = asyncio.ensure_future(self._done.wait())
        started = asyncio.ensure_future(self._started.wait())
        try:
            await asyncio.wait([done, started], return_when=asyncio.FIRST_COMPLETED)
        finally:
            done.cancel()
            started.cancel()

    async def finish(self) -> None:
        """Stop, give requests in flight their timeouts, then abort the rest."""
        self.stop()
        with anyio.move_on_after(self.config.read_timeout + self.config.connect_timeout + 1):
            await self._done.wait()
            return
        self.stop()
        await self._done.wait()

    async def show(self, progress: Progress) -> None:
        """Feed ``progress`` until cancelled."""
        while True:
            progress.update(self.snapshot())
            await anyio.sleep(PROGRESS_EVERY_S)


def run_standalone(session: TrafficSession, progress: Progress | None = None) -> list[EngineResult]:
    """Blocking, for `load`: the session on its own (uv)loop to the end of its
    schedule, Ctrl-C handled by the stop policy (check ``session.interrupted``)."""

    async def main() -> list[EngineResult]:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, session.interrupt)
        try:
            async with anyio.create_task_group() as tg:
                if progress is not None:
                    tg.start_soon(session.show, progress)
                results = await session.run()
                tg.cancel_scope.cancel()
            return results
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    if progress is None:
        return run_on_fast_loop(main)
    with progress:
        return run_on_fast_loop(main)
