"""The analysis and reports of a series' rollouts (harness.series), made
while the next rollouts run: each rollout's summary.json and verdict, and
its page when it did not pass, by report processes that never take CPU
from a lane's own share.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import threading
import time
from typing import Any

from harness.runner import COMPLETE, OBSERVATION_INCOMPLETE, ROLLOUT_FAILED, analyse_run

REPORTABLE = (COMPLETE, ROLLOUT_FAILED, OBSERVATION_INCOMPLETE)

#: the report processes' scheduling-group priority while rollouts run (autogroup nice: weight 110
#: against a lane's 1024); back to 0 after the last rollout where the OS allows it (CAP_SYS_NICE)
BACKGROUND_NICE = 10


def _set_group_nice(pid: int, nice: int) -> bool:
    """The autogroup nice of ``pid``'s session (Linux); False where it cannot."""
    try:
        with open(f"/proc/{pid}/autogroup", "w", encoding="ascii") as f:
            f.write(str(nice))
        return True
    except OSError:
        return False


def _analysis_process() -> None:
    """A report process, started once the lanes have started: its imports
    (seconds on a busy machine) are paid while the first rollout runs. It
    runs in a session of its own: the kernel's autogroups (on by default)
    share the CPU between sessions, so it never takes a part of a lane's own
    share (analysis inside the engine's group was measured to starve it),
    nor depends on what else runs in the caller's session (a nice'd report
    process there was measured at 55 s for one summary beside another
    harness run); its group runs at BACKGROUND_NICE while rollouts run."""
    try:
        os.setsid()
        _set_group_nice(os.getpid(), BACKGROUND_NICE)
    except OSError:
        pass
    from harness.lanes import die_with_parent

    die_with_parent(signal.SIGKILL)  # a killed harness leaves no report process behind
    import harness.analysis  # noqa: F401
    import harness.report  # noqa: F401


class BackgroundAnalysis:
    """Each rollout analysed as soon as it ends, one process per core.
    Analysis beside the traffic in the traffic's own scheduling group was
    measured to starve the engine on a busy 2-core machine (multi-second
    send lag); here each report process is a scheduling group of its own
    (_analysis_process). Analysing every rollout after the last one was measured at 15-60 s of
    the series' wall time. ``offer`` may be called from any thread;
    ``finish`` after the last rollout."""

    def __init__(self, full: bool, every: bool, workers: int):
        self.full, self.every = full, every
        self._lock = threading.Lock()
        self._queue: list[Any] = []
        self._running: dict[int, cf.Future] = {}
        self._done: list[Any] = []
        self._closed = False
        self._pool: cf.ProcessPoolExecutor | None = None
        try:
            self._pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_analysis_process)
            for _ in range(workers):
                self._pool.submit(int)  # start them now
        except (OSError, RuntimeError):
            self._pool = None

    def offer(self, r: Any) -> None:
        if r.status not in REPORTABLE or r.run_dir is None:
            return
        with self._lock:
            if self._closed or self._pool is None:
                return
            self._queue.append(r)
            self._next_locked()

    def _next_locked(self) -> None:
        while self._queue and self._pool is not None:
            r = self._queue.pop(0)
            try:
                fut = self._pool.submit(report_rollout, str(r.run_dir), self.full, self.every)
            except (RuntimeError, cf.BrokenExecutor):
                self._queue.insert(0, r)
                return
            self._running[r.index] = fut
            fut.add_done_callback(lambda f, r=r: self._ended(r, f))

    def _ended(self, r: Any, fut: cf.Future) -> None:
        try:
            r.summary = fut.result()
        except cf.BrokenExecutor:
            pass  # analysed again by the caller
        except Exception as exc:  # noqa: BLE001 - that rollout has no verdict; say why
            r.error = (r.error + "; " if r.error else "") + f"report failed: {exc}"
        with self._lock:
            self._running.pop(r.index, None)
            self._done.append(r)
            self._next_locked()

    def finish(self) -> list[Any]:
        """The last rollout has ended: wait for the analyses; return the rollouts still without a summary (a dead report
        process) for the caller to analyse."""
        with self._lock:
            self._next_locked()
            self._closed = True
        for pid in list(getattr(self._pool, "_processes", None) or {}):
            _set_group_nice(pid, 0)  # nothing left to disturb (needs CAP_SYS_NICE; else they stay lower)
        while True:
            with self._lock:
                pending = list(self._running.values())
                if not pending and not self._queue:
                    break
                if not pending:  # the pool is broken: the queue goes back to the caller
                    left, self._queue = self._queue, []
                    self._done += left
                    break
            cf.wait(pending)
            if all(f.done() for f in pending):
                time.sleep(0.01)  # their done-callbacks are still running
        return [r for r in self._done if not r.summary and not (r.error and "report failed" in r.error)]

    def close(self) -> None:
        with self._lock:
            self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def analyse_left(rollouts: list[Any], full: bool, every: bool) -> None:
    """The analysis and report of rollouts not yet analysed, after the last
    rollout, on every core. A dead report process falls back to analysing
    here."""
    todo = [r for r in rollouts if r.status in REPORTABLE and r.run_dir is not None and not r.summary]
    if not todo:
        return
    workers = max(1, min(len(todo), os.cpu_count() or 1))
    futures: dict[int, cf.Future] = {}
    try:
        # spawn: the parent ran an event loop and threads; a forked copy of them is unsafe
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as ex:
            futures = {r.index: ex.submit(report_rollout, str(r.run_dir), full, every) for r in todo}
            for r in todo:
                try:
                    r.summary = futures[r.index].result()
                except cf.BrokenExecutor:
                    break
                except Exception as exc:  # noqa: BLE001 - that rollout has no verdict; say why
                    r.error = (r.error + "; " if r.error else "") + f"report failed: {exc}"
    except (cf.BrokenExecutor, OSError):
        pass
    for r in todo:
        if not r.summary and not (r.error and "report failed" in r.error):
            try:
                r.summary = report_rollout(str(r.run_dir), full, every)
            except Exception as exc:  # noqa: BLE001
                r.error = (r.error + "; " if r.error else "") + f"report failed: {exc}"


def report_rollout(run_dir: str, full: bool = True, every: bool = False) -> dict[str, Any]:
    """Runs in a report process: the rollout's summary.json and verdict;
    with ``full``, its report when it did not pass, or always with ``every``
    (harness.runner.analyse_run)."""
    return analyse_run(run_dir, report=full, only_failing=not every)


