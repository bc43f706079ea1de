"""The open loop's precise wake-up (harness.traffic.wakeup): a timerfd the
event loop watches, on the real clock, on both loops the engine runs on
(asyncio's and uvloop). Times are asserted only as "never before the time
asked" (a correctness property); how soon after is a benchmark figure
(bench/lagtrace.py), never a test's."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest

from harness.traffic.wakeup import PreciseTimer
from harness.traffic.workers import new_event_loop

MS = 1_000_000
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd is Linux-only")


@pytest.fixture(params=["asyncio", "uvloop"])
def run_loop(request):
    def run(coro_fn):
        factory = asyncio.new_event_loop if request.param == "asyncio" else new_event_loop
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(coro_fn())
    return run


async def _until(pred, limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not pred():
        assert time.monotonic() < deadline, "the timer never fired"
        await asyncio.sleep(0.001)


def test_the_callback_runs_once_and_never_before_the_time_asked(run_loop):
    async def main():
        timer = PreciseTimer.create(asyncio.get_running_loop())
        ran: list[int] = []
        at = time.monotonic_ns() + 3 * MS
        assert timer.call_at(at, lambda: ran.append(time.monotonic_ns())) is timer
        await _until(lambda: ran)
        await asyncio.sleep(0.02)  # nothing more comes
        timer.close()
        return at, ran, timer.fired

    at, ran, fired = run_loop(main)
    assert len(ran) == 1 and ran[0] >= at and fired == 1


def test_call_at_replaces_the_pending_callback(run_loop):
    """Armed for +200 ms with A, then for +2 ms with B: B runs, A never does."""
    async def main():
        timer = PreciseTimer.create(asyncio.get_running_loop())
        ran: list[str] = []
        now = time.monotonic_ns()
        timer.call_at(now + 200 * MS, lambda: ran.append("A"))
        timer.call_at(now + 2 * MS, lambda: ran.append("B"))
        await _until(lambda: ran)
        await asyncio.sleep(0.3)  # past A's time
        timer.close()
        return ran, timer.fired

    assert run_loop(main) == (["B"], 1)


def test_a_cancelled_callback_never_runs_even_when_the_timer_expires(run_loop):
    async def main():
        timer = PreciseTimer.create(asyncio.get_running_loop())
        ran: list[str] = []
        timer.call_at(time.monotonic_ns() + 2 * MS, lambda: ran.append("A")).cancel()
        await asyncio.sleep(0.05)
        later: list[str] = []
        timer.call_at(time.monotonic_ns() + MS, lambda: later.append("B"))  # still usable after it
        await _until(lambda: later)
        timer.close()
        return ran, later, timer.fired

    assert run_loop(main) == ([], ["B"], 1)


def test_a_time_already_past_runs_at_the_next_loop_iteration(run_loop):
    async def main():
        timer = PreciseTimer.create(asyncio.get_running_loop())
        ran: list[str] = []
        timer.call_at(0, lambda: ran.append("past"))  # 0 would disarm a timerfd: clamped to 1 ns
        assert ran == []  # never called from inside call_at
        await _until(lambda: ran)
        timer.close()
        return ran

    assert run_loop(main) == ["past"]


def test_close_stops_watching_and_closes_the_fd(run_loop):
    async def main():
        timer = PreciseTimer.create(asyncio.get_running_loop())
        fd = timer._fd
        timer.call_at(time.monotonic_ns() + MS, lambda: ran.append("A"))
        timer.close()
        with pytest.raises(OSError):
            os.fstat(fd)
        timer.close()  # idempotent
        await asyncio.sleep(0.02)

    ran: list[str] = []
    run_loop(main)
    assert ran == []


def test_a_loop_that_cannot_watch_an_fd_gets_no_timer():
    class NoReaders:
        pass

    assert PreciseTimer.create(NoReaders()) is None
