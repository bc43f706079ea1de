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
side by side (each on its own random ports), for speed. Each finished
rollout is analysed while the next ones run, by report processes (one per
core) each in a session of its own, as each lane is (harness.lanes).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

from harness.errors import BadInput, PlatformError
from harness.model.clock import RunClock
from harness.model.events import EVENTS_FILE, EventKind, EventWriter
from harness.model.rundir import LOGS_DIR, host_info, versions, write_json_atomic
from harness.model.scenario import Scenario
from harness.runner import (COMPLETE, CRASHED, DEPLOY_FAILED, INTERRUPTED, RunState, deploy_until_serving, interruptible,
                            observe_rollout, record_run_end, run_guarded, start_run_dir)
from harness.series_reports import BackgroundAnalysis, analyse_left

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
    holder: list[BackgroundAnalysis] = []
    background: BackgroundAnalysis | None = None

    def start_analysis() -> None:  # after the lanes are forked (harness.lanes.run_lanes)
        holder.append(BackgroundAnalysis(report, every_report, max(1, min(repeat, os.cpu_count() or 1))))

    try:
        if repeat > 1:  # a process per lane (harness.lanes), the analysis here
            status = _in_lane_processes(scenario, platform, series_dir, clock, plan, argv, quiet, holder,
                                        start_analysis)
            background = holder[0] if holder else None
        else:
            # a crash still leaves readable run dirs and a series verdict over what was seen
            ended = run_guarded(lambda: lane_async(scenario, platform, series_dir, clock, 1, plan[0], argv, quiet,
                                                   background), series_dir)
            status = ended[0] if ended is not None else COMPLETE
        if any(r.status == INTERRUPTED for r in rollouts):
            status = INTERRUPTED
        left = background.finish() if background is not None else rollouts
    finally:
        for b in holder:
            b.close()
    analyse_left(left, report, every_report)
    from harness.report.series import finish_series

    summary = finish_series(series_dir, scenario, platform, rollouts, status=status, report=report)
    exit_code = int(summary["verdict"]["exit_code"])
    if status == INTERRUPTED:
        exit_code = 130
    return SeriesOutcome(series_dir, rollouts, summary, exit_code)


def _in_lane_processes(scenario, platform, series_dir, clock, plan, argv, quiet, holder, start_analysis) -> str:
    """The lanes, one process each (harness.lanes); each finished rollout
    is handed to the background analysis as its lane reports it."""
    from harness.lanes import run_lanes

    by_index = {r.index: r for lane in plan for r in lane}
    bad: list[str] = []

    def on_rollout(kind: str, index: int, status: str, error: str | None) -> None:
        if kind == "bad_input":
            bad.append(error or "bad input")
            return
        r = by_index[index]
        r.status, r.error = status, error
        if kind == "rollout" and holder:
            holder[0].offer(r)

    interrupted = run_lanes(scenario, platform, series_dir, clock, plan, argv, quiet, on_rollout, start_analysis)
    if bad:
        for b in holder:
            b.close()
        shutil.rmtree(series_dir, ignore_errors=True)
        raise BadInput(bad[0])
    for r in by_index.values():
        if r.status == "running":
            r.status = INTERRUPTED if interrupted else CRASHED
            r.error = r.error or ("interrupted" if interrupted else "its lane process ended without a status")
    return INTERRUPTED if interrupted else COMPLETE


async def lane_async(scenario, platform_name, series_dir, clock, lane_no, lane, argv, quiet, background) -> None:
    """One lane on this process's loop, Ctrl-C (or SIGTERM) ending its
    current rollout through the normal teardown."""
    stopping = {"interrupted": False}

    def interrupted() -> None:
        stopping["interrupted"] = True

    with interruptible(interrupted):
        await _lane(scenario, platform_name, series_dir, clock, lane_no, lane, argv, quiet, stopping, background)
    if stopping["interrupted"]:
        for r in lane:
            if r.status == "running":
                r.status = INTERRUPTED


async def _lane(scenario, platform_name, series_dir, clock, lane_no, lane: list[Rollout], argv, quiet,
                stopping, background) -> None:
    """One Deployment after another until the lane's rollouts are done: a
    repeatable platform needs one; any other, one per rollout."""
    pending, deployment = list(lane), 0
    while pending and not stopping["interrupted"]:
        deployment += 1
        lane_dir = series_dir / (f"lane-{lane_no}" if deployment == 1 else f"lane-{lane_no}.{deployment}")
        pending = await _deployment(scenario, platform_name, lane_dir, clock, lane_no, pending, argv, quiet,
                                    background)


async def _deployment(scenario, platform_name, lane_dir, clock, lane_no, pending: list[Rollout], argv,
                      quiet, background) -> list[Rollout]:
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
                if repeatable:  # its logs are written as they come: copy them now, then analyse it
                    _copy_logs(lane_dir, r.run_dir)
                    if background is not None:
                        background.offer(r)
                if r.status != COMPLETE and repeatable:  # the Deployment's state is unknown: stop the lane
                    for rest in pending[pos + 1:]:
                        rest.error = f"not run: rollout {r.index} of the same lane ended {r.status}"
                    break
    finally:
        events.close()
    if not repeatable:  # such a platform collects the pods' logs at teardown
        for r in done:
            _copy_logs(lane_dir, r.run_dir)
            if background is not None:
                background.offer(r)
    return left




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
