"""Traffic from generator pods inside the cluster (``traffic.generators``),
run as one traffic session with one merged verdict.

It joins the kubernetes half (harness.platforms.kubernetes.genpods: the
Indexed Job, the pod proxy, the log streams) and the traffic half
(harness.traffic.clocksync, .collect, .recordwire: one clock, records on
disk), which never import each other; so it sits beside the runner.

The session, as the runner sees it, is a TrafficSession: ``run()`` until
stopped, ``started()`` once the traffic runs, ``finish()`` (stop, drain,
abort), ``snapshot()`` for the progress display, plus ``problems()``:
why the run could not see (a generator fell behind, lost contact, or its
clock is known too loosely), each of which makes the run inconclusive.

    create Job -> every pod answers -> clock exchanges (5 each, min RTT)
    -> one start time S on the run clock, sent as S + offset_i to each
    -> records stream in, converted as they arrive -> stop -> drain
    -> end exchanges (drift) -> exit -> delete Job (also on Ctrl-C/failure)
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from harness.model.clock import RunClock
from harness.model.outcome import OUTCOME_CODE, Outcome
from harness.model.requests import outcome_codes, read_request_file
from harness.model.rundir import update_manifest
from harness.model.scenario import Scenario
from harness.model.summary import HostSpeed
from harness.platforms.kubernetes.generators import render_job
from harness.platforms.kubernetes.genpods import GeneratorJob, GeneratorPod
from harness.traffic.clocksync import ClockEstimate, Drift, Exchange, estimate
from harness.traffic.collect import GeneratorRecords
from harness.traffic.engine import EngineConfig, EngineResult
from harness.traffic.progress import Snapshot

log = logging.getLogger(__name__)

EXCHANGES = 5
EXCHANGES_MAX = 40
#: stop exchanging once the offset is known this well (the attribution tolerance is 50 ms)
GOOD_ENOUGH_NS = 1_000_000
#: the common end of the schedule is this far after the stop (plus twice the worst round trip)
STOP_MARGIN_NS = 300_000_000
POLL_S = 0.25
#: generators start this long after the start signal is sent (plus twice the worst round trip)
START_MARGIN_S = 1.0
POD_START_DEADLINE_S = 180.0
_ENGINE_FIELDS = ("rate", "connections", "new_connection_ratio", "connect_timeout", "read_timeout",
                  "max_inflight", "method", "headers", "pod_header", "flush_interval")


def generator_spec(config: EngineConfig, *, url: str, max_duration: float, start_timeout: float) -> dict[str, Any]:
    """RH_GENERATOR: what harness.traffic.generator.Settings reads."""
    engine = {k: getattr(config, k) for k in _ENGINE_FIELDS}
    engine["url"] = url
    return {"engine": engine, "max_duration": round(max_duration, 3), "start_timeout": round(start_timeout, 3),
            "exit_timeout": 60}


def max_duration_s(sc: Scenario) -> float:
    """The longest a run's traffic can last: the generators' own bound."""
    d, dep = sc.disruption, sc.deployment
    return (d.baseline_seconds + d.settle_seconds + dep.progress_deadline_seconds
            + dep.termination_grace_period_seconds + 120.0)


class Generator:
    """What the harness knows of one generator."""

    def __init__(self, pod: GeneratorPod, records: GeneratorRecords):
        self.pod = pod
        self.index = pod.index
        self.records = records
        self.start: ClockEstimate | None = None
        self.end: ClockEstimate | None = None
        self.follower = None
        self.lost: str | None = None
        self.stops_sent = 0
        self.figures: dict[str, Any] | None = None

    @property
    def done(self) -> dict[str, Any] | None:
        return self.records.done

    def drift(self) -> Drift | None:
        return None if self.start is None else Drift(self.start, self.end)


class GeneratorSession:
    def __init__(self, config: EngineConfig, *, scenario: Scenario, platform, clock: RunClock, out_dir: Path,
                 run_dir: Path):
        config.check()
        self.config, self.sc, self.platform, self.clock = config, scenario, platform, clock
        self.spec = scenario.traffic.generators
        self.out_dir, self.run_dir = Path(out_dir), Path(run_dir)
        self.results: list[EngineResult] = []
        self.interrupted = False
        self.gens: list[Generator] = []
        self.job: GeneratorJob | None = None
        self.url = ""
        self.start_ns: int | None = None
        self.stop_ns: int | None = None  # the common end of the schedule, once stopped
        #: run clock of each step: job_created, pods_answered, clocks_synced, start, stopped, ended
        self.timing: dict[str, int] = {}
        self._problems: list[str] = []
        self._stops = 0
        self._done = anyio.Event()
        self._started = anyio.Event()

    # ---- the TrafficSession surface ------------------------------------------------
    @property
    def done(self) -> bool:
        return self._done.is_set()

    def host_speed(self) -> HostSpeed | None:
        """None: the generators run in pods, on the cluster's nodes, not on
        the harness's host (their clocks and lag are in ``problems``)."""
        return None

    def problems(self) -> list[str]:
        return list(self._problems)

    def snapshot(self) -> Snapshot | None:
        if not self.gens:
            return None
        snap = Snapshot()
        for g in self.gens:
            hb = g.records.heartbeat
            snap.issued += int(hb.get("issued", 0))
            snap.completed += int(hb.get("completed", 0))
            snap.lag_max_ms = max(snap.lag_max_ms, float(hb.get("lag_max_ms", 0.0)))
            snap.connections += int(hb.get("connections", 0))
            for i, c in enumerate(hb.get("counts") or []):
                if i < len(snap.counts):
                    snap.counts[i] += int(c)
        return snap

    def stop(self) -> None:
        """First call: the generators stop scheduling and drain; later calls abort."""
        self._stops += 1

    def interrupt(self) -> None:
        self.interrupted = True
        self.stop()

    async def started(self) -> None:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                async def wait(ev):
                    await ev.wait()
                    scope.cancel()
                tg.start_soon(wait, self._done)
                tg.start_soon(wait, self._started)

    async def finish(self) -> None:
        self.stop()
        with anyio.move_on_after(self.config.read_timeout + self.config.connect_timeout + 5):
            await self._done.wait()
            return
        self.stop()
        await self._done.wait()

    # ---- the run --------------------------------------------------------------------
    async def run(self) -> list[EngineResult]:
        try:
            await self._run()
        except Exception as exc:  # noqa: BLE001 - the run goes on, inconclusive, with the reason
            log.warning("generators: %s", exc, exc_info=True)
            self._problems.append(f"generators: {type(exc).__name__}: {exc}")
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._cleanup)
                self._done.set()
        return self.results

    async def _call(self, fn, *args, **kwargs):
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    async def _run(self) -> None:
        self.job, self.url = await self.platform.generator_job()
        max_d = max_duration_s(self.sc)
        spec = generator_spec(self.config, url=self.url, max_duration=max_d, start_timeout=POD_START_DEADLINE_S + 60)
        job = render_job(self.spec, namespace=self.job.namespace, run_label=self.job.run_label, spec=spec,
                         pull_policy=self.sc.kubernetes.image_pull_policy,
                         deadline_s=int(POD_START_DEADLINE_S + 60 + max_d + 120), name=self.job.name)
        await self._call(self.job.create, job)
        self.timing["job_created"] = self.clock.now()
        update_manifest(self.run_dir, generators=self._describe())
        pods = await self._wait_for_pods()
        self.timing["pods_answered"] = self.clock.now()
        for p in pods:
            rec = GeneratorRecords(p.index, self.out_dir / f"generator-{p.index:03d}.arrow", now=self.clock.now)
            self.gens.append(Generator(p, rec))
        for g in self.gens:
            g.follower = self.job.follow(g.pod.name, g.records.feed,
                                         still_running=lambda g=g: g.lost is None and g.done is None)
        async with anyio.create_task_group() as tg:
            for g in self.gens:
                tg.start_soon(self._sync_start, g)
        self.timing["clocks_synced"] = self.clock.now()
        for g in self.gens:
            g.records.set_offset(g.start.offset_ns)
        worst_rtt = max(g.start.rtt_ns for g in self.gens)
        self.start_ns = self.clock.now() + int(START_MARGIN_S * 1e9) + 2 * worst_rtt
        async with anyio.create_task_group() as tg:
            for g in self.gens:
                tg.start_soon(self._send_start, g)
        update_manifest(self.run_dir, generators=self._describe())
        await anyio.sleep(max(0.0, (self.start_ns - self.clock.now()) / 1e9))
        self._started.set()
        self.timing["start"] = self.start_ns
        await self._watch()
        self.timing["ended"] = self.clock.now()
        async with anyio.create_task_group() as tg:
            for g in self.gens:
                if g.lost is None:
                    tg.start_soon(self._sync_end, g)

    async def _wait_for_pods(self) -> list[GeneratorPod]:
        deadline = time.monotonic() + POD_START_DEADLINE_S
        answered: dict[str, GeneratorPod] = {}
        while True:
            pods = await self._call(self.job.pods)
            for p in pods:
                if p.waiting_reason in ("ErrImageNeverPull", "ImagePullBackOff", "ErrImagePull", "InvalidImageName"):
                    raise RuntimeError(f"generator pod {p.name} cannot start: {p.waiting_reason} "
                                       f"(image {self.spec.image}: `make generator-image` builds it; on kind "
                                       "`make kind-load-generator`)")
                if p.running and p.name not in answered:
                    try:
                        await self._call(self.job.ask, p.name, "/healthz", timeout=3.0)
                        answered[p.name] = p
                    except Exception:  # noqa: BLE001 - not listening yet
                        pass
            if len(answered) >= self.spec.count:
                return sorted(answered.values(), key=lambda p: p.index)
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(answered)} of {self.spec.count} generator pods answered within "
                                   f"{POD_START_DEADLINE_S:g} s")
            await anyio.sleep(POLL_S)

    async def _exchanges(self, g: Generator) -> ClockEstimate:
        """At least EXCHANGES, more (up to EXCHANGES_MAX) while the best round
        trip is still long: on a busy machine most exchanges wait somewhere
        (the harness's GIL, the API server), and the bound is the best one's."""
        xs: list[Exchange] = []
        while len(xs) < EXCHANGES_MAX:
            xs.append(Exchange(*await self._call(self.job.exchange, g.pod.name, self.clock.now)))
            if len(xs) >= EXCHANGES and estimate(xs).uncertainty_ns <= GOOD_ENOUGH_NS:
                break
            await anyio.sleep(0.01)
        return estimate(xs)

    async def _sync_start(self, g: Generator) -> None:
        g.start = await self._exchanges(g)

    async def _sync_end(self, g: Generator) -> None:
        try:
            g.end = await self._exchanges(g)
        except Exception as exc:  # noqa: BLE001
            log.info("generator %d: no end exchange: %s", g.index, exc)
        try:
            await self._call(self.job.ask, g.pod.name, "/exit", timeout=3.0)
        except Exception:  # noqa: BLE001 - it exits on its own after its exit timeout
            pass

    async def _send_start(self, g: Generator) -> None:
        await self._call(self.job.ask, g.pod.name, "/start", query={"at": str(g.start.to_gen(self.start_ns))})

    async def _send_stop(self, g: Generator, at_ns: int | None) -> None:
        query = {"at": str(g.start.to_gen(at_ns))} if at_ns is not None and g.start is not None else None
        try:
            await self._call(self.job.ask, g.pod.name, "/stop", query=query, timeout=3.0)
        except Exception as exc:  # noqa: BLE001 - it stops at its max duration anyway
            log.info("generator %d: stop not delivered: %s", g.index, exc)

    async def _watch(self) -> None:
        """Until every generator is done or lost: contact, stop requests."""
        timeout_ns = int(self.spec.contact_timeout_seconds * 1e9)
        while True:
            now = self.clock.now()
            for g in self.gens:
                if g.done is not None or g.lost is not None:
                    continue
                heard = g.records.last_heard
                if g.records.status.get("sigterm") is not None:
                    g.lost = f"generator {g.index} (pod {g.pod.name}) was terminated (SIGTERM) mid-run"
                elif g.follower.ended.is_set():
                    g.lost = f"generator {g.index} (pod {g.pod.name}): its log stream ended before it finished"
                elif heard is None or now - heard > timeout_ns:
                    g.lost = (f"generator {g.index} (pod {g.pod.name}) lost contact: nothing heard for "
                              f"{(now - (heard or self.start_ns or now)) / 1e9:.1f} s")
                if g.lost:
                    log.warning("%s", g.lost)
            pending = [g for g in self.gens
                       if g.done is None and g.lost is None and g.stops_sent < min(self._stops, 2)]
            if pending:
                # the first stop: one end time for all (as the start), far enough ahead to reach them all
                worst_rtt = max((g.start.rtt_ns for g in pending if g.start is not None), default=0)
                end_at = now + STOP_MARGIN_NS + 2 * worst_rtt if self.stop_ns is None else None
                self.stop_ns = self.stop_ns or end_at
                async with anyio.create_task_group() as tg:
                    for g in pending:
                        g.stops_sent += 1
                        tg.start_soon(self._send_stop, g, end_at if g.stops_sent == 1 else None)
            if all(g.done is not None or g.lost is not None for g in self.gens):
                return
            await anyio.sleep(POLL_S)

    # ---- the end: results, problems, manifest, cleanup ---------------------------------
    def _cleanup(self) -> None:
        for g in self.gens:
            if g.follower is not None:
                g.follower.join(timeout=2.0 if g.done is not None else 0.5)
                g.follower.stop(timeout=1.0)
            g.records.close()
        if self.job is not None:
            self.job.delete()
        self.results = [self._result(g) for g in self.gens]
        self._judge()
        update_manifest(self.run_dir, generators=self._describe())

    def _to_run(self, g: Generator, t_gen: int) -> int:
        return g.start.to_run(t_gen) if g.start is not None else t_gen

    def _result(self, g: Generator) -> EngineResult:
        d = g.done or {}
        start = self._to_run(g, int(d["start_ns"])) if "start_ns" in d else (self.start_ns or 0)
        end = self._to_run(g, int(d["end_ns"])) if "end_ns" in d else (g.records.last_heard or start)
        return EngineResult(g.index, g.records.path, start, end, g.records.rows,
                            bool(d.get("interrupted", True)) or g.lost is not None, float(d.get("cpu_s", 0.0)))

    def _judge(self) -> None:
        bound_ns = int(self.spec.max_clock_uncertainty_ms * 1e6)
        lag_limit = self.sc.gate.max_send_lag_p99_ms
        for g in self.gens:
            if g.lost is None and g.records.status.get("sigterm") is not None:
                # its last word came before the watch saw the SIGTERM: terminated all the same
                g.lost = f"generator {g.index} (pod {g.pod.name}) was terminated (SIGTERM) mid-run"
            if g.lost:
                self._problems.append(g.lost)
            d = g.drift()
            if d is not None and d.uncertainty_ns > bound_ns:
                self._problems.append(f"generator {g.index}: clock uncertainty {d.uncertainty_ns / 1e6:.1f} ms is "
                                      f"over traffic.generators.maxClockUncertaintyMs "
                                      f"({self.spec.max_clock_uncertainty_ms:g} ms)")
            fig = self._figures(g)
            g.figures = fig
            if fig["dropped"] or (fig["send_lag_p99_ms"] or 0) > lag_limit:
                self._problems.append(f"generator {g.index} fell behind its schedule: {fig['dropped']} dropped, "
                                      f"send lag p99 {fig['send_lag_p99_ms']} ms (limit {lag_limit:g} ms)")
            done = g.done or {}
            if g.done is not None and int(done.get("sent_rows", g.records.rows)) != g.records.rows:
                self._problems.append(f"generator {g.index}: sent {done.get('sent_rows')} records, "
                                      f"{g.records.rows} arrived")

    def _figures(self, g: Generator) -> dict[str, Any]:
        table, complete = read_request_file(g.records.path)
        n = table.num_rows
        if not n:
            return {"records": 0, "dropped": 0, "send_lag_p99_ms": None, "complete": complete}
        codes = outcome_codes(table)
        sent = table.column("sent_ns").to_numpy()
        sched = table.column("scheduled_ns").to_numpy()
        lag = (sent[sent >= 0] - sched[sent >= 0]) / 1e6
        return {"records": n, "dropped": int((codes == OUTCOME_CODE[Outcome.DROPPED]).sum()),
                "failed": int((codes != OUTCOME_CODE[Outcome.OK]).sum()),
                "send_lag_p99_ms": round(float(np.percentile(lag, 99)), 3) if len(lag) else None,
                "complete": complete}

    def _describe(self) -> dict[str, Any]:
        gens = []
        for g in self.gens:
            d = g.drift()
            gens.append({"index": g.index, "pod": g.pod.name, "node": g.pod.node, "worker": g.index,
                         "clock": d.as_dict() if d is not None else None,
                         "records": g.records.rows, "batches": g.records.batches, "lines": g.records.lines,
                         "bytes": g.records.bytes, "torn": g.records.torn,
                         "sent": {k: v for k, v in (g.done or {}).items() if k.startswith("sent_")},
                         "lost": g.lost, "figures": g.figures})
        drifts = [g.drift() for g in self.gens if g.drift() is not None]
        return {"count": self.spec.count, "target": self.spec.target, "url": self.url, "image": self.spec.image,
                "start_ns": self.start_ns, "stop_ns": self.stop_ns, "timing_s": {k: round(v / 1e9, 3) for k, v in self.timing.items()},
                "clock_uncertainty_ns": max((d.uncertainty_ns for d in drifts), default=None),
                "max_clock_uncertainty_ms": self.spec.max_clock_uncertainty_ms,
                "records": sum(g.records.rows for g in self.gens), "generators": gens,
                "problems": self._problems}
