"""One run of a scenario: deploy, baseline traffic, the rollout, settle,
teardown — every request and every pod step recorded in one run dir, which
stays readable whatever happens (Ctrl-C, a stuck rollout, a crash).

    outcome = run_scenario(scenario, platform="local", run_dir=...)

The platform, the traffic session (harness.traffic.session) and the progress
display share one event loop (uvloop where installed); the platform's
resolver is called for each new connection (by the in-process engine, or for
engine worker processes over a pipe), so no proxy sits in the data path.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as _dt
import shutil
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio

from harness.errors import (EXIT_INCONCLUSIVE, EXIT_PASS, BadInput, HarnessError, ObservationIncomplete,
                            PlatformError)
from harness.model.clock import RunClock
from harness.model.generators import check_generators
from harness.model.events import EVENTS_FILE, EventKind, EventWriter
from harness.model.requests import REQUESTS_DIR, read_requests_table
from harness.model.rundir import MANIFEST_FILE, host_info, update_manifest, versions, write_json_atomic
from harness.model.workload import workload_of
from harness.model.scenario import Scenario
from harness.model.summary import Manifest
from harness.platforms import PLATFORMS, make_platform
from harness.platforms.base import Platform
from harness.traffic.engine import EngineConfig, EngineResult
from harness.traffic.preflight import wait_until_serving
from harness.traffic.progress import Progress
from harness.traffic.session import TrafficSession, run_standalone
from harness.traffic.summary import generator_figures
from harness.traffic.workers import run_on_fast_loop

#: run statuses written to manifest.json
COMPLETE, INTERRUPTED, CRASHED, ROLLOUT_FAILED, DEPLOY_FAILED, OBSERVATION_INCOMPLETE = (
    "complete", "interrupted", "crashed", "rollout_failed", "deploy_failed", "observation_incomplete")
EXIT_INTERRUPTED = 130


@dataclasses.dataclass
class RunOutcome:
    run_dir: Path
    status: str
    exit_code: int
    summary: dict[str, Any]
    error: str | None = None
    reported: bool = False


@dataclasses.dataclass
class RunState:
    """What one run (one rollout window) has seen so far: read by the
    progress display, written to the manifest at the end."""

    phase: str = "starting"
    phase_t_ns: dict[str, int] = dataclasses.field(default_factory=dict)
    session: TrafficSession | None = None
    engine_results: list[EngineResult] = dataclasses.field(default_factory=list)
    platform: Platform | None = None
    status: str = COMPLETE
    error: str | None = None
    #: the rollout itself completed (even if its pods' ends were not all seen)
    rollout_done: bool = False


def check_platform(name: str) -> None:
    if name not in PLATFORMS:
        raise BadInput(f"--platform {name!r}: choose one of {', '.join(PLATFORMS)}")


def run_scenario(scenario: Scenario, *, platform: str, run_dir: Path, report: bool = True,
                 progress: Progress | None = None, argv: list[str] | None = None) -> RunOutcome:
    """Run ``scenario`` on ``platform`` into ``run_dir`` (created here)."""
    check_platform(platform)
    check_generators(scenario, platform)
    clock = RunClock.start()
    start_run_dir(scenario, platform, run_dir, clock, argv)
    events = EventWriter(run_dir / EVENTS_FILE)
    state = RunState()
    try:
        ended = run_guarded(lambda: _run_async(scenario, platform, run_dir, clock, events, state, progress), run_dir,
                            before_removal=events.close)
    finally:
        events.close()
        if progress is not None:
            progress.close(note=f"{scenario.name}: traffic and rollout done; analysing ...")
    if ended is not None:
        state.status, state.error = ended[0], ended[1] or state.error
    return _finish(scenario, run_dir, state, report)


def start_run_dir(scenario: Scenario, platform: str, run_dir: Path, clock: RunClock, argv: list[str] | None,
                  **extra: Any) -> None:
    """Create ``run_dir`` (new) with its manifest, status "running": what is
    run, where and how, written before anything else happens."""
    run_dir.mkdir(parents=True, exist_ok=False)
    write_json_atomic(run_dir / MANIFEST_FILE, {
        "kind": "run", "run_id": run_dir.name, "status": "running", "platform": platform,
        "scenario": scenario.dump(), "scenario_path": scenario.source_path,
        "workload": workload_of(scenario).describe(), "spec_risks": _spec_risks(scenario),
        "started_at": _now(), "command": argv or sys.argv, "clock": clock.as_dict(), "host": host_info(),
        "versions": versions(), **extra,
    })


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _spec_risks(scenario: Scenario) -> list[dict[str, Any]]:
    """What `check` sees in the user's manifests, kept beside the run that
    shows (or not) the same risks as evidence."""
    from harness.spec.checks import check_workload

    wl = workload_of(scenario)
    return [r.as_dict() for r in check_workload(wl)] if wl.from_manifests else []


def bad_input_in(exc: BaseException) -> BadInput | None:
    """The BadInput inside ``exc``, unwrapping task-group exception groups."""
    if isinstance(exc, BadInput):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = bad_input_in(inner)
            if found is not None:
                return found
    return None


def run_guarded(main: Callable[[], Awaitable[None]], out_dir: Path, *,
                before_removal: Callable[[], None] | None = None) -> tuple[str, str | None] | None:
    """Run ``main()`` on the fast loop: None when it ended, (INTERRUPTED, None)
    on Ctrl-C, (CRASHED, error) with crash.txt written — a crash still leaves
    a readable ``out_dir``. Bad configuration found by the platform before
    any load (unknown context, missing permission, image not loaded) is
    raised: exit 2 with its message and no half-written ``out_dir`` (the
    platform has already torn down what it made)."""
    try:
        run_on_fast_loop(main)
    except KeyboardInterrupt:
        return INTERRUPTED, None
    except BaseException as exc:  # noqa: BLE001
        bad = bad_input_in(exc)
        if bad is not None:
            if before_removal is not None:
                before_removal()
            shutil.rmtree(out_dir, ignore_errors=True)
            raise bad from None
        (out_dir / "crash.txt").write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
        return CRASHED, f"{type(exc).__name__}: {exc}"
    return None


@contextlib.contextmanager
def interruptible(on_interrupt: Callable[[], None]) -> Iterator[None]:
    """SIGINT/SIGTERM call ``on_interrupt`` and cancel the block: Ctrl-C
    ends the rollout(s) through their normal teardown."""
    loop = asyncio.get_running_loop()
    scope = anyio.CancelScope()

    def interrupt() -> None:
        on_interrupt()
        scope.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    try:
        with scope:
            yield
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _run_async(scenario: Scenario, platform_name: str, run_dir: Path, clock: RunClock, events: EventWriter,
                     state: RunState, progress: Progress | None) -> None:
    def interrupted() -> None:
        state.status = INTERRUPTED

    platform = make_platform(platform_name, scenario, run_dir, clock, events)
    state.platform = platform
    with interruptible(interrupted):
        async with platform, anyio.create_task_group() as tg:
            if progress is not None:
                progress.status = lambda: f"{state.phase:<10}  {platform.rollout_state()}"
                tg.start_soon(_progress_loop, progress, state)
            try:
                await deploy_until_serving(platform, scenario, state)
            except PlatformError as exc:
                state.status, state.error = DEPLOY_FAILED, str(exc)
                tg.cancel_scope.cancel()
                return
            await observe_rollout(scenario, platform, run_dir, clock, events, state)
            tg.cancel_scope.cancel()


async def _progress_loop(progress: Progress, state: RunState) -> None:
    while True:
        progress.update(state.session.snapshot() if state.session is not None else None)
        await anyio.sleep(0.25)


# ---- one rollout on a deployed platform: the part `run` and `run --repeat` share ----------

async def deploy_until_serving(platform: Platform, scenario: Scenario, state: RunState | None = None) -> None:
    """Deploy, then wait until the target answers: "all replicas ready" is
    not "the service answers" (no readiness probe, a warming app), and the
    baseline must start from a serving target. PlatformError when it cannot."""
    if state is not None:
        state.phase = "deploying"
    await platform.deploy()
    if state is not None:
        state.phase = "waiting for the target to serve"
    await wait_until_serving(
        platform.target_url(), resolver=platform.resolver(),
        need=2 * scenario.deployment.replicas, pods=scenario.deployment.replicas,
        deadline_s=scenario.deployment.progress_deadline_seconds,
        method=scenario.traffic.method, headers=scenario.traffic.headers, pod_header=scenario.traffic.pod_header,
        timeout=scenario.traffic.connect_timeout + scenario.traffic.read_timeout)


async def observe_rollout(scenario: Scenario, platform: Platform, run_dir: Path, clock: RunClock,
                          events: EventWriter, state: RunState) -> None:
    """One rollout window of a deployed, serving platform into ``run_dir``:
    its own traffic session, then baseline -> disruption -> settle -> end
    (phase events), the traffic stopped. ``state`` gets the phases, the
    engine results and the status (rollout_failed, observation_incomplete;
    interrupted when the window is cut short)."""
    d = scenario.disruption

    def phase(name: str) -> None:
        state.phase = name
        state.phase_t_ns[name] = clock.now()
        events.emit(state.phase_t_ns[name], "", EventKind.PHASE, phase=name)

    session = traffic_session(scenario, platform, clock, run_dir)
    state.session = session

    async def traffic() -> None:
        state.engine_results = await session.run()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(traffic)
            await session.started()  # worker processes may take seconds to start
            phase("baseline")
            await anyio.sleep(d.baseline_seconds)
            phase("disruption")
            try:
                await platform.disrupt()
            except ObservationIncomplete as exc:
                state.status, state.error = OBSERVATION_INCOMPLETE, str(exc)
                state.rollout_done = True
            except PlatformError as exc:
                state.status, state.error = ROLLOUT_FAILED, str(exc)
            else:
                phase("settle")
                await anyio.sleep(d.settle_seconds)
            await session.finish()
            problems = session.problems()  # generators that fell behind, lost contact, or whose clock is loose
            if problems and state.status == COMPLETE:
                state.status, state.error = OBSERVATION_INCOMPLETE, "; ".join(problems)
            phase("end")
    finally:
        if "end" not in state.phase_t_ns and state.status == COMPLETE:
            state.status = INTERRUPTED  # cut short (Ctrl-C, or a crash the caller names)


def traffic_session(scenario: Scenario, platform: Platform, clock: RunClock, run_dir: Path):
    """The harness's own engine(s), or generator pods in the cluster (traffic.generators)."""
    config = EngineConfig.from_traffic(platform.target_url(), scenario.traffic)
    if scenario.traffic.generators is not None:
        from harness.fleet import GeneratorSession

        return GeneratorSession(config, scenario=scenario, platform=platform, clock=clock,
                                out_dir=run_dir / REQUESTS_DIR, run_dir=run_dir)
    return TrafficSession(config, clock=clock, out_dir=run_dir / REQUESTS_DIR, workers=scenario.traffic.workers,
                          resolver=platform.resolver())


# ---- after the loop: summary, manifest, report ---------------------------------------------

def record_run_end(scenario: Scenario, run_dir: Path, state: RunState) -> None:
    """The manifest's end of a run: status, the engine's figures (its
    generator section), whether the rollout completed and was fully
    observed, the phase times and the platform's facts."""
    table, complete = read_requests_table(run_dir)
    gens = scenario.traffic.generators
    generator = generator_figures(table, state.engine_results, asked_rate=scenario.traffic.rate,
                                  workers=gens.count if gens is not None else scenario.traffic.workers,
                                  records_complete=complete,
                                  host=state.session.host_speed() if state.session is not None else None)
    platform_info = state.platform.describe() if state.platform is not None else {}
    update_manifest(
        run_dir, status=state.status, error=state.error, finished_at=_now(), generator=generator,
        rollout={"completed": "settle" in state.phase_t_ns or state.rollout_done, "error": state.error if state.status in (
            ROLLOUT_FAILED, DEPLOY_FAILED) else None},
        observation={"complete": state.status != OBSERVATION_INCOMPLETE,
                     "reason": state.error if state.status == OBSERVATION_INCOMPLETE else None},
        phases_t_ns=state.phase_t_ns, platform_info=platform_info)


def analyse_run(run_dir: str | Path, *, report: bool = True, only_failing: bool = False) -> dict[str, Any]:
    """The run dir's summary.json (written by the analysis) and its verdict;
    with ``report``, the report too (charts, index.html, junit.xml) — with
    ``only_failing``, only for a run that did not pass (a passing run's page
    is rarely read and costs ~10x its summary; `report RUN_DIR` renders it)."""
    from harness.analysis import write_summary

    if report and not only_failing:
        from harness.report import write_report

        return write_report(run_dir)  # the analysis writes summary.json, then the report
    summary = dict(write_summary(run_dir).summary)
    if report and (summary.get("verdict") or {}).get("status") != "pass":
        from harness.report import write_report

        summary = write_report(run_dir)
    return summary


def _finish(scenario: Scenario, run_dir: Path, state: RunState, report: bool) -> RunOutcome:
    record_run_end(scenario, run_dir, state)
    exit_code = EXIT_PASS
    reported = False
    summary: dict[str, Any] = {}
    try:
        summary = analyse_run(run_dir, report=report)
        reported = report
        # the gate's exit code with or without the report: CI reads it either way
        exit_code = int(summary.get("verdict", {}).get("exit_code", EXIT_INCONCLUSIVE))
    except Exception as exc:  # noqa: BLE001 - the run's records stay; say why there is no verdict
        state.error = (state.error + "; " if state.error else "") + f"report failed: {exc}"
        if not isinstance(exc, HarnessError):
            (run_dir / "report-error.txt").write_text("".join(traceback.format_exception(exc)),
                                                      encoding="utf-8")
        exit_code = EXIT_INCONCLUSIVE
    if state.status in (ROLLOUT_FAILED, DEPLOY_FAILED, CRASHED, OBSERVATION_INCOMPLETE):
        exit_code = EXIT_INCONCLUSIVE
    elif state.status == INTERRUPTED:
        exit_code = EXIT_INTERRUPTED
    return RunOutcome(run_dir, state.status, exit_code, summary, state.error, reported)


def failure_counts(run_dir: Path) -> dict[str, int]:
    """Failed requests by outcome (for tests and the demo)."""
    table, _ = read_requests_table(run_dir)
    if not table.num_rows:
        return {}
    import collections

    c = collections.Counter(table.column("outcome").combine_chunks().cast("string").to_pylist())
    c.pop("ok", None)
    return dict(c)


# ---- `load`: traffic at a URL, no platform ----------------------------------------------------

def run_load(config: EngineConfig, *, out: Path, workers: int, max_lag_ms: float,
             progress: Progress | None = None) -> RunOutcome:
    """Traffic at ``config.url`` into the run dir ``out`` (new or empty):
    records, the manifest with its generator section, summary.json. Exit 3
    when the engine fell behind (dropped, or send-lag p99 over ``max_lag_ms``),
    130 when interrupted."""
    out.mkdir(parents=True, exist_ok=True)
    clock = RunClock.start()
    manifest: Manifest = {"kind": "load", "url": config.url, "platform": "none", "status": "running",
                          "engine": {**dataclasses.asdict(config), "workers": workers},
                          "clock": clock.as_dict(), "host": host_info(), "versions": versions()}
    write_json_atomic(out / MANIFEST_FILE, manifest)
    session = TrafficSession(config, clock=clock, out_dir=out / REQUESTS_DIR, workers=workers)
    results = run_standalone(session, progress)
    status = INTERRUPTED if session.interrupted else COMPLETE
    table, complete = read_requests_table(out)
    generator = generator_figures(table, results, asked_rate=config.rate, workers=workers,
                                  records_complete=complete, max_lag_ms=max_lag_ms, host=session.host_speed())
    manifest.update(status=status, generator=generator)
    write_json_atomic(out / MANIFEST_FILE, manifest)
    from harness.analysis import write_summary

    summary = write_summary(out).summary
    exit_code = EXIT_INTERRUPTED if session.interrupted else (EXIT_INCONCLUSIVE if generator["fell_behind"] else 0)
    return RunOutcome(out, status, exit_code, dict(summary))
