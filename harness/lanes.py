"""The lanes of a series (``run --repeat N --lanes L``), each in a process
of its own.

Why: a lane is a traffic engine at the scenario's rate plus the platform
it observes (on the local platform: kubelet, probes, endpoint view), all
on one event loop, which is what makes the engine's send lag a measure of
whether the run could see. Two lanes on one loop share one core (the
GIL): on a 2-core machine, one process per lane lets them use both, and
the rollouts' analysis runs in the parent beside them. And
the kernel's autogroup scheduler (on by default) gives each session an
equal share of the CPU, whatever its number of processes: a lane in a
session of its own gets its own share, as each app replica (a session of
its own, like a container) already does, instead of two lanes halving one.

The parent (harness.series) starts the lanes, forwards Ctrl-C to them, and
learns of each finished rollout over a queue, so it can analyse it while
the others run; each lane writes only its own run dirs and lane dir.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import queue as queue_mod
import signal
import threading
from typing import Any, Callable

from harness.model.clock import RunClock

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int) -> bool:
    """This process gets ``sig`` when the process that started it dies
    (PR_SET_PDEATHSIG, Linux); False when it has died already."""
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(sig))
    except (OSError, AttributeError):
        pass
    return os.getppid() == parent


class _Reporter:
    """In a lane process: what the lane's code calls ``background.offer``."""

    def __init__(self, q):
        self.q = q

    def offer(self, r) -> None:
        self.q.put(("rollout", r.index, r.status, r.error))


def _lane_main(q, scenario, platform_name: str, series_dir: str, clock: dict, lane_no: int,
               plan: list[tuple[int, str]], argv, quiet: bool) -> None:
    """A lane process: its own session (scheduling group), its own fast loop,
    Ctrl-C/SIGTERM ending the rollout through its normal teardown. Every
    rollout's final status is sent at the end, run or not."""
    from pathlib import Path

    from harness import series
    from harness.runner import run_guarded

    try:
        os.setsid()
    except OSError:
        pass
    if not die_with_parent(signal.SIGTERM):  # the parent gone (killed): end the rollouts as Ctrl-C would
        return
    from harness.errors import BadInput

    rollouts = [series.Rollout(i, Path(d)) for i, d in plan]
    crash_dir = Path(series_dir) / f"lane-{lane_no}"
    crash_dir.mkdir(parents=True, exist_ok=True)
    try:
        ended = run_guarded(lambda: series.lane_async(scenario, platform_name, Path(series_dir),
                                                      RunClock.from_dict(clock), lane_no, rollouts, argv, quiet,
                                                      _Reporter(q)),
                            crash_dir)
    except BadInput as exc:  # the parent removes the series dir and exits 2 with it
        q.put(("bad_input", 0, "bad_input", str(exc)))
        return
    for r in rollouts:
        status, error = r.status, r.error
        if ended is not None and status in ("running", series.NOT_RUN):
            status, error = ended[0], ended[1] or error
        q.put(("final", r.index, status, error))


def run_lanes(scenario, platform_name: str, series_dir, clock: RunClock, plan: list[list[Any]], argv, quiet: bool,
              on_rollout: Callable[[str, int, str, str | None], None],
              after_start: Callable[[], None] | None = None) -> bool:
    """Run each lane of ``plan`` (lists of Rollout) in its own process; call
    ``on_rollout("rollout", index, status, error)`` as each rollout ends
    (from a thread), ``on_rollout("final", ...)`` with every rollout's final
    status, ``on_rollout("bad_input", 0, "bad_input", message)`` when a lane
    met bad input; ``after_start()`` once every lane has started. True when
    interrupted.

    The lanes are forked while this process has no other thread (before
    ``after_start`` starts any): a forked lane starts with every module
    already imported, where a spawned one imports them all again, which was
    measured at 40-50 s before the first deploy on a machine at load 20."""
    ctx = multiprocessing.get_context("fork" if threading.active_count() == 1 else "spawn")
    q = ctx.Queue()
    procs = []
    for lane_no, lane in enumerate(plan, start=1):
        p = ctx.Process(target=_lane_main, name=f"lane-{lane_no}", daemon=False,
                        args=(q, scenario, platform_name, str(series_dir), clock.as_dict(), lane_no,
                              [(r.index, str(r.run_dir)) for r in lane], argv, quiet))
        p.start()
        procs.append(p)
    if after_start is not None:
        after_start()
    done = threading.Event()

    def pump() -> None:
        while not done.is_set() or not q.empty():
            try:
                kind, index, status, error = q.get(timeout=0.2)
            except queue_mod.Empty:
                continue
            except (EOFError, OSError):
                return
            on_rollout(kind, index, status, error)

    t = threading.Thread(target=pump, name="lanes", daemon=True)
    t.start()
    interrupted = False
    try:
        for p in procs:
            while p.is_alive():
                p.join(0.2)
    except KeyboardInterrupt:
        interrupted = True
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGINT)
        for p in procs:
            p.join()
    finally:
        done.set()
        t.join()
    return interrupted
