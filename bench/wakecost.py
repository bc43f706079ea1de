#!/usr/bin/env python3
"""What one sleep and wake-up of the engine's event loop costs on this machine.

The open loop sleeps between requests and wakes for each response and for
its timer, so its CPU per request is mostly wake-ups when the machine makes
them dear (a VM: the timer, the halt and the interrupt each trap to the
host). This times N wake-ups a second of a trivial callback on the engine's
timer (harness.traffic.wakeup, a timerfd) and on the loop's own timer, and
the Python work of one wake without the sleep, so the difference is the
sleep and wake itself.

    bench/wakecost.py [--rates 1000,5000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.traffic.wakeup import PreciseTimer  # noqa: E402
from harness.traffic.workers import new_event_loop  # noqa: E402


async def wakes(kind: str, rate: float, seconds: float) -> tuple[float, int]:
    """CPU us per wake-up, and the wake-ups, of ``rate`` wake-ups a second for ``seconds``."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    timer = PreciseTimer.create(loop) if kind == "timerfd" else None
    period, total = 1e9 / rate, int(rate * seconds)
    count = [0]
    start = time.monotonic_ns()

    def tick() -> None:
        count[0] += 1
        if count[0] >= total:
            done.set_result(None)
            return
        at = start + int(count[0] * period)
        if timer is not None:
            timer.call_at(at, tick)
        else:
            loop.call_later(max(0.0, (at - time.monotonic_ns()) / 1e9), tick)

    c0 = time.process_time()
    tick()
    await done
    cpu = time.process_time() - c0
    if timer is not None:
        timer.close()
    return cpu / count[0] * 1e6, count[0]


async def work_only(n: int = 100_000) -> float:
    """us of Python work per wake without sleeping: re-arm the timerfd, read it, one loop iteration."""
    loop = asyncio.get_running_loop()
    timer = PreciseTimer.create(loop)
    far = time.monotonic_ns() + 10**10
    t0 = time.perf_counter()
    for _ in range(n):
        timer.call_at(far, lambda: None)
        try:
            os.read(timer._fd, 8)
        except BlockingIOError:
            pass
    per = (time.perf_counter() - t0) / n * 1e6
    timer.close()
    count = [0]
    done = loop.create_future()

    def ping() -> None:
        count[0] += 1
        if count[0] < n:
            loop.call_soon(ping)
        else:
            done.set_result(None)

    t0 = time.perf_counter()
    loop.call_soon(ping)
    await done
    return per + (time.perf_counter() - t0) / n * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="1000,5000")
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    loop = new_event_loop()
    try:
        work = loop.run_until_complete(work_only())
        print(f"Python work of one wake-up, without the sleep: {work:.1f} us")
        for rate in [float(r) for r in args.rates.split(",") if r]:
            for kind in ("timerfd", "loop"):
                us, n = loop.run_until_complete(wakes(kind, rate, args.seconds))
                note = " (per callback: the loop's timer wakes at most once a millisecond)" if kind == "loop" \
                    and rate > 1000 else ""
                print(f"{kind:8s} {rate:>7,.0f} a second: {us:5.1f} us CPU per wake-up ({n:,}){note}")
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
