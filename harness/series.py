"""Many rollouts of one scenario in one invocation (``run --repeat N``).

Layout (docs/proof.md): one series dir holding one complete run dir per
rollout, so every rollout is analysed, reported and gated exactly like a
single run, and the analysis still reads only run dirs:

    reports/<scenario>/<series-id>/
      series.json           what was asked, then the aggregate and its verdict
      rollout-01/ ...       one run dir per rollout (manifest, requests, events, logs, report)
      lane-1/               the lane's own full event log and the pods' logs
      index.html, junit.xml the aggregate report (one test case per rollout)

Where the platform allows (``repeatable_disrupt``: the local platform), a
lane deploys once and rolls the same Deployment out again and again: each
rollout gets its own engine, its own baseline/disruption/settle window and
its own run dir; the lifecycle of the pods that carry over is replayed into
the new run dir's events so its analysis knows every pod it sees. Other
platforms redeploy per rollout. ``lanes`` > 1 runs independent Deployments
side by side (each on its own random ports), for speed. The rollouts are
analysed and reported after the last one, in one process per core, so
analysis never competes with the traffic.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import datetime as _dt
import json
import multiprocessing
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import anyio

from harness.errors import BadInput, PlatformError
from harness.model.clock import RunClock
from harness.model.events import EVENTS_FILE, EventKind, EventWriter
from harness.model.rundir import LOGS_DIR, host_info, versions, write_json_atomic
from harness.model.scenario import Scenario
from harness.runner import (COMPLETE, DEPLOY_FAILED, INTERRUPTED, OBSERVATION_INCOMPLETE, ROLLOUT_FAILED, RunState,
                            analyse_run, deploy_until_serving, interruptible, observe_rollout, record_run_end,
                            run_guarded, start_run_dir)

SERIES_FILE = "series.json"
NOT_RUN = "not_run"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class SwitchingEvents:
    """The EventWriter a lane's platform holds: every event goes to the
    lane's own log and to the current rollout's events.jsonl. On a switch,
    the steps so far of every pod still alive are replayed into the new
    file, so each rollout's run dir is complete on its own."""

    def __init__(self, lane_file: Path):
        self.lane = EventWriter(lane_file)
        self.current: EventWriter | None = None
        self._pods: dict[str, list[tuple]] = {}
        self._lock = threading.Lock()

    def emit(self, t_ns, pod, kind, source="harness", **detail):
        with self._lock:
            ev = self.lane.emit(t_ns, pod, kind, source, **detail)
            if self.current is not None:
                self.current.emit(t_ns, pod, kind, source, **detail)
            if pod:
                if str(kind) == EventKind.POD_DELETED:
                    self._pods.pop(pod, None)
                else:
                    self._pods.setdefault(pod, []).append((t_ns, pod, kind, source, detail))
        return ev

    def switch(self, path: Path | None) -> None:
        with self._lock:
            if self.current is not None:
                self.current.close()
            self.current = None
            if path is None:
                return
            self.current = EventWriter(path)
            for steps in self._pods.values():
                for t_ns, pod, kind, source, detail in steps:
                    self.current.emit(t_ns, pod, kind, source, **detail)

    def alive_pods(self) -> list[str]:
        with self._lock:
            return list(self._pods)

    def close(self) -> None:
        self.switch(None)
        self.lane.close()


@dataclasses.dataclass
class Rollout:
    index: int
    run_dir: Path | None
    status: str = NOT_RUN
    error: str | None = None
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class SeriesOutcome:
    series_dir: Path
    rollouts: list[Rollout]
    summary: dict[str, Any]
    exit_code: int


def rollout_dir(series_dir: Path, index: int) -> Path:
    return series_dir / f"rollout-{index:02d}"


def run_series(scenario: Scenario, *, platform: str, series_dir: Path, repeat: int, lanes: int = 1,
               report: bool = True, every_report: bool = False, argv: list[str] | None = None,
               quiet: bool = True) -> SeriesOutcome:
    """Run ``repeat`` rollouts of ``scenario`` into ``series_dir`` (created here)."""
    from harness.runner import check_platform

    check_platform(platform)
    if repeat < 1:
        raise BadInput(f"--repeat {repeat}: give a number of rollouts >= 1")
    lanes = max(1, min(lanes, repeat))
    series_dir.mkdir(parents=True, exist_ok=False)
    clock = RunClock.start()
    write_json_atomic(series_dir / SERIES_FILE, {
        "kind": "series", "series_id": series_dir.name, "status": "running", "platform": platform,
        "scenario": scenario.dump(), "scenario_path": scenario.source_path, "repeat": repeat, "lanes": lanes,
        "started_at": _now(), "command": argv or sys.argv, "clock": clock.as_dict(), "host": host_info(),
        "versions": versions()})
    rollouts = [Rollout(i, rollout_dir(series_dir, i)) for i in range(1, repeat + 1)]
    plan = [rollouts[i::lanes] for i in range(lanes)]
    # a crash still leaves readable run dirs and a series verdict over what was seen
    ended = run_guarded(lambda: _series_async(scenario, platform, series_dir, clock, plan, argv, quiet), series_dir)
    status = ended[0] if ended is not None else COMPLETE
    if any(r.status == INTERRUPTED for r in rollouts):
        status = INTERRUPTED
    _analyse_all(rollouts, report, every_report)
    from harness.report.series import finish_series

    summary = finish_series(series_dir, scenario, platform, rollouts, status=status, report=report)
    exit_code = int(summary["verdict"]["exit_code"])
    if status == INTERRUPTED:
        exit_code = 130
    return SeriesOutcome(series_dir, rollouts, summary, exit_code)


def _analyse_all(rollouts: list[Rollout], full: bool, every: bool) -> None:
    """Every rollout's analysis and report, after the last rollout: analysis
    running beside the traffic was seen to starve the engine on a busy
    2-core machine (multi-second send lag), so it waits, then uses every
    core. A dead report process falls back to analysing here."""
    todo = [r for r in rollouts if r.status in REPORTABLE and r.run_dir is not None]
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


async def _series_async(scenario, platform_name, series_dir, clock, plan, argv, quiet) -> None:
    stopping = {"interrupted": False}

    def interrupted() -> None:
        stopping["interrupted"] = True

    with interruptible(interrupted):
        async with anyio.create_task_group() as tg:
            for lane_no, lane in enumerate(plan, start=1):
                tg.start_soon(_lane, scenario, platform_name, series_dir, clock, lane_no, lane, argv, quiet,
                              stopping)
    if stopping["interrupted"]:
        for lane in plan:
            for r in lane:
                if r.status == "running":
                    r.status = INTERRUPTED


async def _lane(scenario, platform_name, series_dir, clock, lane_no, lane: list[Rollout], argv, quiet,
                stopping) -> None:
    """One Deployment after another until the lane's rollouts are done: a
    repeatable platform needs one; any other, one per rollout."""
    pending, deployment = list(lane), 0
    while pending and not stopping["interrupted"]:
        deployment += 1
        lane_dir = series_dir / (f"lane-{lane_no}" if deployment == 1 else f"lane-{lane_no}.{deployment}")
        pending = await _deployment(scenario, platform_name, lane_dir, clock, lane_no, pending, argv, quiet)


async def _deployment(scenario, platform_name, lane_dir, clock, lane_no, pending: list[Rollout], argv,
                      quiet) -> list[Rollout]:
    """Deploy once, then roll out as many of ``pending`` as the platform
    allows; return those still to run on a fresh Deployment."""
    from harness.platforms import make_platform

    events = SwitchingEvents(lane_dir / EVENTS_FILE)
    platform = make_platform(platform_name, scenario, lane_dir, clock, events)
    repeatable = platform.repeatable_disrupt
    done: list[Rollout] = []
    left: list[Rollout] = []
    try:
        async with platform:
            try:
                await deploy_until_serving(platform, scenario)
            except PlatformError as exc:
                for r in pending:
                    r.status, r.error = DEPLOY_FAILED, f"lane {lane_no} could not deploy: {exc}"
                return []
            for pos, r in enumerate(pending):
                if pos and not repeatable:
                    left = pending[pos:]  # this platform cannot roll one Deployment out twice
                    break
                await _one_rollout(scenario, platform_name, platform, events, clock, r, lane_no, argv, quiet)
                done.append(r)
                if repeatable:  # its logs are written as they come: copy them now (analysed after the last rollout)
                    _copy_logs(lane_dir, r.run_dir)
                if r.status != COMPLETE and repeatable:  # the Deployment's state is unknown: stop the lane
                    for rest in pending[pos + 1:]:
                        rest.error = f"not run: rollout {r.index} of the same lane ended {r.status}"
                    break
    finally:
        events.close()
    if not repeatable:  # such a platform collects the pods' logs at teardown
        for r in done:
            _copy_logs(lane_dir, r.run_dir)
    return left


REPORTABLE = (COMPLETE, ROLLOUT_FAILED, OBSERVATION_INCOMPLETE)


async def _one_rollout(scenario: Scenario, platform_name: str, platform, events: SwitchingEvents, clock: RunClock,
                       r: Rollout, lane_no: int, argv, quiet: bool) -> None:
    """One rollout of the lane's Deployment into its own run dir, exactly as
    `run` observes one: its own traffic session and baseline -> disruption ->
    settle window (harness.runner.observe_rollout)."""
    run_dir = r.run_dir
    assert run_dir is not None
    start_run_dir(scenario, platform_name, run_dir, clock, argv,
                  series={"series_id": run_dir.parent.name, "index": r.index, "lane": lane_no,
                          "pods_carried_over": events.alive_pods()})
    events.switch(run_dir / EVENTS_FILE)
    r.status = "running"
    state = RunState(platform=platform)
    try:
        await observe_rollout(scenario, platform, run_dir, clock, events, state)  # type: ignore[arg-type]
    finally:
        if not quiet:
            print(f"rollout {r.index}: {state.status}" + (f" ({state.error})" if state.error else ""),
                  file=sys.stderr, flush=True)
        r.status, r.error = state.status, state.error
        record_run_end(scenario, run_dir, state)
        events.switch(None)


def _copy_logs(lane_dir: Path, run_dir: Path | None) -> None:
    """The logs of the pods this rollout saw, as they are now (a pod that
    lives on keeps logging into the lane's copy)."""
    if run_dir is None:
        return
    src = lane_dir / LOGS_DIR
    seen = set()
    try:
        for line in (run_dir / EVENTS_FILE).read_text(encoding="utf-8").splitlines():
            pod = json.loads(line).get("pod")
            if pod:
                seen.add(pod)
    except (OSError, ValueError):
        return
    dst = run_dir / LOGS_DIR
    dst.mkdir(exist_ok=True)
    for pod in seen:
        f = src / f"{pod}.log"
        if f.is_file():
            shutil.copyfile(f, dst / f.name)
