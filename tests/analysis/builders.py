"""Hand-made run dirs for the analysis and report tests.

``RunBuilder`` writes a run dir the way the runner does (manifest.json,
requests/*.arrow through RequestWriter, events.jsonl through EventWriter),
from a few lines of test code: steady traffic across the pods visible at
each moment, plus the failures a test wants, with the platform's ground
truth (route_pod) recorded as the local platform would.

``rollout(mistake)`` models a two-pod rolling update (api-a1, api-a2 ->
api-b1, api-b2) with one of the shipped mistakes, so each diagnosis rule
has a table row that should trigger it and best-practice has none.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from harness.model.events import EventKind, EventWriter, SourceKind
from harness.model.outcome import OUTCOME_CODE, Outcome
from harness.model.requests import REQUESTS_DIR, RequestWriter
from harness.model.rundir import MANIFEST_FILE, write_json_atomic
from harness.model.scenario import Scenario

S = 1_000_000_000


def scenario_dict(name: str = "test", **deployment: Any) -> dict[str, Any]:
    base = {"name": name, "deployment": {"replicas": 2, **deployment},
            "traffic": {"rate": 200}, "gate": {"maxFailedRequests": 0}}
    return Scenario.model_validate(base).dump()


class RunBuilder:
    def __init__(self, root: Path, *, scenario: dict[str, Any] | None = None, status: str = "complete",
                 rollout_completed: bool = True):
        self.dir = Path(root)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.scenario = scenario or scenario_dict()
        self.status = status
        self.rollout_completed = rollout_completed
        self.events: list[tuple[int, str, str, str, dict[str, Any]]] = []
        self.rows: list[tuple] = []
        self._seq = itertools.count()
        self._conn = itertools.count(1)
        self.manifest_extra: dict[str, Any] = {}

    # ---- events ------------------------------------------------------------------
    def event(self, t_s: float, pod: str, kind: str, source: str = SourceKind.HARNESS, **detail: Any) -> "RunBuilder":
        self.events.append((int(t_s * S), pod, str(kind), str(source), detail))
        return self

    def app(self, t_s: float, pod: str, event: str, **detail: Any) -> "RunBuilder":
        kind = EventKind.APP_SHUTDOWN_STARTED if event == "sigterm_received" else EventKind.APP_LOG
        return self.event(t_s, pod, kind, SourceKind.APP_LOG, event=event, **detail)

    def phases(self, baseline: float, disruption: float, settle: float, end: float) -> "RunBuilder":
        for name, t in (("baseline", baseline), ("disruption", disruption), ("settle", settle), ("end", end)):
            self.event(t, "", EventKind.PHASE, phase=name)
        return self

    def start_pod(self, pod: str, t_s: float, *, ready_after: float = 0.1, endpoint_delay: float = 0.5,
                  app_ready_after: float | None = None) -> "RunBuilder":
        self.event(t_s, pod, EventKind.POD_CREATED).event(t_s, pod, EventKind.CONTAINER_STARTED)
        self.app(t_s + 0.01, pod, "listening")
        self.app(t_s + (app_ready_after if app_ready_after is not None else ready_after), pod, "ready")
        self.event(t_s + ready_after, pod, EventKind.READY)
        self.event(t_s + ready_after + endpoint_delay, pod, EventKind.ENDPOINT_ADDED)
        return self

    # ---- requests ------------------------------------------------------------------
    def request(self, t_s: float, outcome: Outcome = Outcome.OK, *, pod: str | None = None,
                route_pod: str | None = None, conn_id: int | None = None, reused: bool = False,
                latency_ms: float = 5.0, sent: bool = True, status: int | None = None) -> int:
        seq = next(self._seq)
        t = int(t_s * S)
        if conn_id is None:
            conn_id = next(self._conn)
        if status is None:
            status = 200 if outcome is Outcome.OK else 503 if outcome is Outcome.HTTP_503 else 0
        if outcome is Outcome.OK and pod is None:
            pod = route_pod
        self.rows.append((seq, t, t if sent else -1, t + int(latency_ms * 1e6), OUTCOME_CODE[outcome],
                          status, 0, None if outcome is Outcome.OK else outcome.value, conn_id, reused,
                          pod, route_pod))
        return conn_id

    def new_conn(self) -> int:
        return next(self._conn)

    def steady(self, start_s: float, end_s: float, rate: float, pods_at) -> None:
        """OK traffic on new connections, round robin over ``pods_at(t)``."""
        n = int((end_s - start_s) * rate)
        for i in range(n):
            t = start_s + i / rate
            pods = pods_at(t)
            if pods:
                self.request(t, route_pod=pods[i % len(pods)])

    # ---- writing ------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "platform": "local", "status": self.status,
                "clock": {"monotonic_anchor_ns": 0, "wall_anchor_ns": 0},
                "generator": {"asked_rate": self.scenario["traffic"]["rate"]},
                "rollout": {"completed": self.rollout_completed, "error": None},
                **self.manifest_extra}

    def write(self, *, manifest: bool = True) -> Path:
        if manifest:
            write_json_atomic(self.dir / MANIFEST_FILE, self.manifest())
        w = RequestWriter(self.dir / REQUESTS_DIR / "worker-0.arrow", worker=0)
        for row in sorted(self.rows, key=lambda r: r[1]):
            w.add(*row)
        w.close()
        ew = EventWriter(self.dir / "events.jsonl")
        for t, pod, kind, source, detail in sorted(self.events, key=lambda e: e[0]):
            ew.emit(t, pod, kind, source, **detail)
        ew.close()
        return self.dir


# ---- a two-pod rollout with one mistake ------------------------------------------------------

MISTAKES = ("best-practice", "no-prestop", "no-graceful-shutdown", "short-grace", "no-readiness-probe",
            "capacity-dip", "keepalive-cut")


def rollout(root: Path, mistake: str) -> Path:
    """api-a1/api-a2 replaced by api-b1/api-b2 (b1 at 3 s, a1 deleted at 4 s;
    b2 at 6 s, a2 deleted at 7 s); endpoints follow changes 1 s later."""
    prestop = None if mistake == "no-prestop" else {"sleep": {"seconds": 2}}
    dep: dict[str, Any] = {"terminationGracePeriodSeconds": 2.5 if mistake == "short-grace" else 30,
                           "strategy": {"rollingUpdate": {"maxSurge": 0 if mistake == "capacity-dip" else 1,
                                                          "maxUnavailable": 1 if mistake == "capacity-dip" else 0}}}
    if prestop:
        dep["lifecycle"] = {"preStop": prestop}
    if mistake != "no-readiness-probe":
        dep["readinessProbe"] = {"httpGet": {"path": "/ready"}, "periodSeconds": 1}
    b = RunBuilder(root, scenario=scenario_dict(mistake, **dep))
    b.phases(0, 2, 10, 12)
    b.start_pod("api-a1", -1, endpoint_delay=0).start_pod("api-a2", -1, endpoint_delay=0)
    warm = 2.0 if mistake == "no-readiness-probe" else None
    dip = 3.0 if mistake == "capacity-dip" else 0.0
    b_start = {"api-b1": 3 + dip, "api-b2": 6 + dip}
    for pod, t in b_start.items():
        b.start_pod(pod, t - 0.1, app_ready_after=warm, endpoint_delay=0.9 if warm is None else 0.05)
    old = {"api-a1": 4.0, "api-a2": 7.0}
    ends: dict[str, float] = {}
    for pod, t in old.items():
        b.event(t, pod, EventKind.DELETION_REQUESTED).event(t, pod, EventKind.ENDPOINT_TERMINATING)
        b.event(t + 1.0, pod, EventKind.ENDPOINT_REMOVED)
        sig = t if prestop is None else t + 2
        if prestop:
            b.event(t, pod, EventKind.PRESTOP_STARTED).event(t + 2, pod, EventKind.PRESTOP_FINISHED)
        b.event(sig, pod, EventKind.SIGTERM_SENT).app(sig + 0.001, pod, "sigterm_received")
        if mistake == "no-graceful-shutdown":
            end = sig + 0.002
            b.app(end, pod, "exiting", code=143, graceful=False)
        elif mistake == "short-grace":
            b.app(sig + 0.002, pod, "draining").app(sig + 0.003, pod, "listener_closed")
            end = t + 2.5
            b.event(end, pod, EventKind.SIGKILL_SENT)
        else:
            b.app(sig + 0.002, pod, "draining").app(sig + 0.003, pod, "listener_closed")
            b.app(sig + 0.02, pod, "inflight_drained").app(sig + 0.021, pod, "exiting", code=0)
            end = sig + 0.021
        # as the sample app: 143 (128 + SIGTERM) without a graceful shutdown, 137 when SIGKILLed
        code = {"short-grace": 137, "no-graceful-shutdown": 143}.get(mistake, 0)
        b.event(end + 0.005, pod, EventKind.APP_EXITED, exit_code=code)
        ends[pod] = end
    def visible(t: float) -> list[str]:
        out = [p for p, d in old.items() if t < d + 1.0]
        out += [p for p, s in b_start.items() if t >= s + (0.0 if warm else 0.9)]
        return out

    b.steady(0, 12, 100, visible)
    # a keep-alive connection per old pod, busy until its pod stops
    ka = {p: b.new_conn() for p in old}
    for pod, conn in ka.items():
        stop = ends[pod]
        t = 0.05
        while t < stop - 0.06:
            b.request(t, route_pod=pod, conn_id=conn, reused=t > 0.05)
            t += 0.05

    if mistake == "no-prestop":
        for pod, t in old.items():  # new connections refused until the endpoint update lands
            for k in range(8):
                b.request(t + 0.1 + k * 0.1, Outcome.REFUSED, route_pod=pod, sent=False, latency_ms=0.2)
            b.request(ends[pod] - 0.01, Outcome.CLOSED, route_pod=pod, conn_id=ka[pod], reused=True, latency_ms=15)
    elif mistake == "no-graceful-shutdown":
        for pod in old:
            e = ends[pod]
            b.request(e - 0.004, Outcome.CLOSED, route_pod=pod, conn_id=ka[pod], reused=True, latency_ms=5)
            for k in range(3):  # in flight on their own connections, sent before the removal
                b.request(e - 1.2 + k * 0.1, Outcome.RESET, route_pod=pod, latency_ms=1200 - k * 100 + 3)
    elif mistake == "short-grace":
        for pod, t in old.items():
            for k in range(4):
                b.request(t - 0.5 + k * 0.05, Outcome.RESET, route_pod=pod, latency_ms=(3 - k * 0.05) * 1000 + 2)
            b.request(t - 2.0, Outcome.OK, route_pod=pod, latency_ms=1900)
    elif mistake == "no-readiness-probe":
        for pod, s in b_start.items():
            for k in range(6):
                b.request(s + 0.1 + k * 0.2, Outcome.HTTP_503, pod=pod, route_pod=pod, latency_ms=1)
    elif mistake == "capacity-dip":
        for k in range(5):  # overloaded while only one pod serves...
            b.request(5.2 + k * 0.2, Outcome.HTTP_503, pod="api-a2", route_pod="api-a2", latency_ms=1)
        # ...and just after, while the backlog drains
        b.request(7.5, Outcome.HTTP_503, pod="api-b1", route_pod="api-b1", latency_ms=1)
    elif mistake == "keepalive-cut":
        for pod in old:
            e = ends[pod]
            # in flight for 35 ms (the server was working on it) when the RST came
            b.request(e - 0.053, Outcome.RESET, route_pod=pod, conn_id=ka[pod], reused=True, latency_ms=35)
    return b.write()
