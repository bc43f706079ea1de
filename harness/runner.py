"""One run of a scenario: deploy, baseline traffic, the rollout, settle,
teardown — every request and every pod step recorded in one run dir, which
stays readable whatever happens (Ctrl-C, a stuck rollout, a crash).

    outcome = run_scenario(scenario, platform="local", run_dir=...)

The platform, the traffic engine and the progress display share one event
loop (uvloop where installed); the platform's resolver is called by the
engine for each new connection, so no proxy sits in the data path.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as _dt
import shutil
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import anyio

from harness.errors import EXIT_INCONCLUSIVE, EXIT_PASS, BadInput, HarnessError, PlatformError
from harness.model.clock import RunClock
from harness.model.events import EVENTS_FILE, EventKind, EventWriter, read_events
from harness.model.requests import REQUESTS_DIR, read_requests_table
from harness.model.workload import workload_of
from harness.model.rundir import (MANIFEST_FILE, SUMMARY_FILE, host_info, update_manifest, versions,
                                  write_json_atomic)
from harness.model.scenario import Scenario
from harness.platforms import PLATFORMS, make_platform

#: run statuses written to manifest.json
COMPLETE, INTERRUPTED, CRASHED, ROLLOUT_FAILED, DEPLOY_FAILED = (
    "complete", "interrupted", "crashed", "rollout_failed", "deploy_failed")
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
class _State:
    """What the run has seen so far; read by the progress display."""

    phase: str = "starting"
    phase_t_ns: dict[str, int] = dataclasses.field(default_factory=dict)
    engine: Any = None
    engine_result: Any = None
    platform: Any = None
    status: str = COMPLETE
    error: str | None = None


def check_platform(name: str) -> None:
    if name not in PLATFORMS:
        raise BadInput(f"--platform {name!r}: choose one of {', '.join(PLATFORMS)}")


def run_scenario(scenario: Scenario, *, platform: str, run_dir: Path, report: bool = True,
                 progress: Callable[[_State, RunClock], Any] | None = None, argv: list[str] | None = None) -> RunOutcome:
    """Run ``scenario`` on ``platform`` into ``run_dir`` (created here)."""
    check_platform(platform)
    run_dir.mkdir(parents=True, exist_ok=False)
    clock = RunClock.start()
    write_json_atomic(run_dir / MANIFEST_FILE, {
        "kind": "run", "run_id": run_dir.name, "status": "running", "platform": platform,
        "scenario": scenario.dump(), "scenario_path": scenario.source_path,
        "workload": workload_of(scenario).describe(),
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": argv or sys.argv, "clock": clock.as_dict(), "host": host_info(), "versions": versions(),
    })
    events = EventWriter(run_dir / EVENTS_FILE)
    state = _State()
    try:
        _run_loop(_run_async(scenario, platform, run_dir, clock, events, state, progress))
    except KeyboardInterrupt:
        state.status = INTERRUPTED
    except BaseException as exc:  # noqa: BLE001 - a crash still leaves a readable run dir
        bad = _bad_input_in(exc)
        if bad is not None:
            # Bad configuration found by the platform before any load (unknown context,
            # missing permission, image not loaded): exit 2 with its message, and no
            # half-written run dir. The platform has already torn down what it made.
            events.close()
            shutil.rmtree(run_dir, ignore_errors=True)
            raise bad from None
        state.status, state.error = CRASHED, f"{type(exc).__name__}: {exc}"
        (run_dir / "crash.txt").write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    finally:
        events.close()
        close = getattr(progress, "close", None)
        if callable(close):
            close()
    return _finish(scenario, run_dir, clock, state, report)


def _bad_input_in(exc: BaseException) -> BadInput | None:
    """The BadInput inside ``exc``, unwrapping task-group exception groups."""
    if isinstance(exc, BadInput):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _bad_input_in(inner)
            if found is not None:
                return found
    return None


def _run_loop(coro) -> None:
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(coro)


async def _run_async(scenario: Scenario, platform_name: str, run_dir: Path, clock: RunClock, events: EventWriter,
                     state: _State, progress) -> None:
    from harness.traffic.engine import Engine, EngineConfig
    from harness.traffic.preflight import wait_until_serving

    loop = asyncio.get_running_loop()
    main = anyio.CancelScope()

    def interrupt() -> None:
        state.status = INTERRUPTED
        main.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)

    def phase(name: str) -> None:
        state.phase = name
        state.phase_t_ns[name] = clock.now()
        events.emit(state.phase_t_ns[name], "", EventKind.PHASE, phase=name)

    platform = make_platform(platform_name, scenario, run_dir, clock, events)
    state.platform = platform
    d = scenario.disruption
    try:
        with main:
            async with platform, anyio.create_task_group() as tg:
                if progress is not None:
                    tg.start_soon(_progress_loop, progress, state, clock)
                state.phase = "deploying"
                try:
                    await platform.deploy()
                    # "all replicas ready" is not "the service answers" (no readiness probe,
                    # a warming app): the baseline must start from a serving target.
                    state.phase = "waiting for the target to serve"
                    await wait_until_serving(
                        platform.target_url(), resolver=platform.resolver(),
                        need=2 * scenario.deployment.replicas,
                        deadline_s=scenario.deployment.progress_deadline_seconds,
                        method=scenario.traffic.method, headers=scenario.traffic.headers,
                        timeout=scenario.traffic.connect_timeout + scenario.traffic.read_timeout)
                except PlatformError as exc:
                    state.status, state.error = DEPLOY_FAILED, str(exc)
                    tg.cancel_scope.cancel()
                    return
                cfg = EngineConfig.from_traffic(platform.target_url(), scenario.traffic)
                engine = Engine(cfg, clock=clock, out_dir=run_dir / REQUESTS_DIR, resolver=platform.resolver())
                state.engine = engine
                traffic_done = anyio.Event()

                async def traffic() -> None:
                    try:
                        state.engine_result = await engine.run()
                    finally:
                        traffic_done.set()

                tg.start_soon(traffic)
                phase("baseline")
                await anyio.sleep(d.baseline_seconds)
                phase("disruption")
                try:
                    await platform.disrupt()
                except PlatformError as exc:
                    state.status, state.error = ROLLOUT_FAILED, str(exc)
                else:
                    phase("settle")
                    await anyio.sleep(d.settle_seconds)
                await _stop_traffic(engine, traffic_done, scenario)
                phase("end")
                tg.cancel_scope.cancel()
    finally:
        if state.engine is not None and state.engine_result is None:
            state.engine.writer.close()  # interrupted: flush what was recorded (idempotent)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _stop_traffic(engine, done: anyio.Event, scenario: Scenario) -> None:
    """Stop scheduling; let requests in flight finish (bounded by the read
    timeout), then abort the rest."""
    engine.stop()
    with anyio.move_on_after(scenario.traffic.read_timeout + scenario.traffic.connect_timeout + 1):
        await done.wait()
        return
    engine.stop()
    await done.wait()


async def _progress_loop(progress, state: _State, clock: RunClock) -> None:
    while True:
        progress(state, clock)
        await anyio.sleep(0.25)


# ---- after the loop: summary, manifest, report ---------------------------------------------

def _finish(scenario: Scenario, run_dir: Path, clock: RunClock, state: _State, report: bool) -> RunOutcome:
    summary = _engine_summary(run_dir, scenario, state)
    write_json_atomic(run_dir / SUMMARY_FILE, summary)
    platform_info = {}
    describe = getattr(state.platform, "describe", None)
    if callable(describe):
        platform_info = describe()
    update_manifest(
        run_dir, status=state.status, error=state.error,
        finished_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        traffic={"asked_rate": scenario.traffic.rate, "achieved_rate": summary.get("achieved_rate"),
                 # one in-process engine: the platform's resolver is called on its loop
                 "engine_workers": 1, "asked_workers": scenario.traffic.workers,
                 "send_lag_ms": summary.get("send_lag_ms"), "dropped": summary.get("dropped")},
        rollout={"completed": "settle" in state.phase_t_ns, "error": state.error if state.status in (
            ROLLOUT_FAILED, DEPLOY_FAILED) else None},
        phases_t_ns=state.phase_t_ns, platform_info=platform_info)
    exit_code = EXIT_PASS
    reported = False
    if report:
        try:
            from harness.report import write_report
        except ImportError:
            write_report = None
        if write_report is not None:
            try:
                summary = write_report(run_dir)
                reported = True
                exit_code = int(summary.get("verdict", {}).get("exit_code", EXIT_INCONCLUSIVE))
            except Exception as exc:  # noqa: BLE001 - the run's records stay; say why there is no verdict
                state.error = (state.error + "; " if state.error else "") + f"report failed: {exc}"
                if not isinstance(exc, HarnessError):
                    (run_dir / "report-error.txt").write_text("".join(traceback.format_exception(exc)),
                                                              encoding="utf-8")
                exit_code = EXIT_INCONCLUSIVE
    if state.status in (ROLLOUT_FAILED, DEPLOY_FAILED, CRASHED):
        exit_code = EXIT_INCONCLUSIVE
    elif state.status == INTERRUPTED:
        exit_code = EXIT_INTERRUPTED
    return RunOutcome(run_dir, state.status, exit_code, summary, state.error, reported)


def _engine_summary(run_dir: Path, scenario: Scenario, state: _State) -> dict[str, Any]:
    """The traffic engine's keys, plus outcomes per phase (what the disruption added)."""
    from harness.traffic.summary import summarize

    table, complete = read_requests_table(run_dir)
    res = state.engine_result
    if res is not None:
        start, end = res.start_ns, res.end_ns
    elif table.num_rows:
        sched = table.column("scheduled_ns").to_numpy()
        start, end = int(sched.min()), int(sched.max())
    else:
        start = end = 0
    summary = summarize(table, start_ns=start, end_ns=end, asked_rate=scenario.traffic.rate)
    summary["records_complete"] = complete
    summary["status"] = state.status
    summary["outcomes_by_phase"] = outcomes_by_phase(table, state.phase_t_ns)
    summary["disruption_outcomes"] = summary["outcomes_by_phase"].get("disruption", {})
    return summary


def outcomes_by_phase(table, phase_t_ns: dict[str, int]) -> dict[str, dict[str, int]]:
    """Request outcomes counted by the phase their schedule fell in."""
    import pyarrow.compute as pc

    names = [p for p in ("baseline", "disruption", "settle") if p in phase_t_ns]
    if not table.num_rows or not names:
        return {}
    sched = table.column("scheduled_ns")
    outcome = table.column("outcome").combine_chunks().cast("string")
    edges = [phase_t_ns[n] for n in names] + [phase_t_ns.get("end", 1 << 62)]
    out: dict[str, dict[str, int]] = {}
    for i, name in enumerate(names):
        mask = pc.and_(pc.greater_equal(sched, edges[i]), pc.less(sched, edges[i + 1]))
        counts = pc.value_counts(pc.filter(outcome, mask.combine_chunks()))
        out[name] = {str(c["values"]): int(c["counts"]) for c in counts.to_pylist()}
    return out


def failure_counts(run_dir: Path) -> dict[str, int]:
    """Failed requests by outcome (for tests and the demo)."""
    table, _ = read_requests_table(run_dir)
    if not table.num_rows:
        return {}
    import collections

    c = collections.Counter(table.column("outcome").combine_chunks().cast("string").to_pylist())
    c.pop("ok", None)
    return dict(c)


def pod_events(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in read_events(run_dir) if e["kind"] == kind]


# ---- live progress ------------------------------------------------------------------------------

class LiveProgress:
    """One status block, refreshed 4 times a second on a terminal; a plain
    line every few seconds otherwise (CI logs)."""

    def __init__(self, scenario: Scenario, console=None, plain_every_s: float = 5.0):
        from rich.console import Console

        self.scenario = scenario
        self.console = console or Console(file=sys.stderr)
        self._live = None
        self._last = (0, 0)  # (t_ns, completed)
        self._rate = 0.0
        self._plain_every_ns = int(plain_every_s * 1e9)
        self._last_plain = 0

    def __enter__(self) -> "LiveProgress":
        if self.console.is_terminal:
            from rich.live import Live
            from rich.text import Text

            self._live = Live(Text(""), console=self.console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """The run's loop is over: stop refreshing (the report comes next)."""
        if self._live is not None:
            live, self._live = self._live, None
            live.__exit__(None, None, None)
            self.console.print(f"{self.scenario.name}: traffic and rollout done; analysing ...", style="dim")

    def text(self, state: _State, clock: RunClock):
        from rich.text import Text

        now = clock.now()
        t = Text()
        t.append(f"{self.scenario.name} ", style="bold")
        t.append(f"{now / 1e9:6.1f}s  ")
        t.append(f"{state.phase:<10}", style="cyan")
        rollout = getattr(state.platform, "rollout_state", None)
        if callable(rollout):
            t.append(f"  {rollout()}")
        engine = state.engine
        if engine is not None:
            live = engine.live
            t_last, c_last = self._last
            if now - t_last >= 5e8:
                self._rate = (live.completed - c_last) / ((now - t_last) / 1e9) if t_last else 0.0
                self._last = (now, live.completed)
            t.append(f"\n  {self._rate:7.0f} req/s of {self.scenario.traffic.rate:g}  {live.completed:,} done  ")
            failed = live.failed
            t.append(f"{failed:,} failed", style="red" if failed else "green")
            fails = {k: v for k, v in live.outcomes.items() if k != "ok"}
            if fails:
                t.append(" (" + ", ".join(f"{k} {v:,}" for k, v in sorted(fails.items())) + ")", style="red")
            t.append(f"  lag max {live.take_lag_max_ms():.1f} ms  conns {live.connections}")
        return t

    def __call__(self, state: _State, clock: RunClock) -> None:
        text = self.text(state, clock)
        if self._live is not None:
            self._live.update(text)
        elif clock.now() - self._last_plain >= self._plain_every_ns:
            self._last_plain = clock.now()
            self.console.print(text, soft_wrap=True)
