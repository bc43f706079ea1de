"""The ingress hop in the analysis: proxy 5xx attributed from the access log,
the ingress's own endpoint view in the termination chain, and the ingress
rules (slowest hop, upstream keep-alive mismatch, retries absorbed)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.analysis import analyse
from harness.model.events import EventKind
from harness.model.outcome import Outcome
from tests.analysis.builders import RunBuilder, scenario_dict

UP = {"api-a1": "127.0.0.1:9001", "api-a2": "127.0.0.1:9002", "api-b1": "127.0.0.1:9003"}


def iso(t_s: float) -> str:
    """Run-clock seconds as Traefik's StartUTC (the builder's wall anchor is 0)."""
    whole = int(t_s)
    return f"1970-01-01T00:00:{whole:02d}.{int(round((t_s - whole) * 1e9)):09d}Z"


class IngressRun:
    """A run through the ingress: a1 is deleted at 4 s and stops listening at
    once (no preStop); kube-proxy drops it at 5 s, the ingress at 5.8 s."""

    def __init__(self, root: Path, *, prestop: float | None = None, retries: int = 0, env: dict | None = None):
        dep = {"readinessProbe": {"httpGet": {"path": "/ready"}, "periodSeconds": 1}}
        if prestop is not None:
            dep["lifecycle"] = {"preStop": {"sleep": {"seconds": prestop}}}
        sc = scenario_dict("ingress-test", **dep)
        sc["traffic"].update({"via": "ingress", "ingress": {"retries": retries}})
        if env:
            sc["app"]["env"].update(env)
        self.b = RunBuilder(root, scenario=sc)
        self.log: list[dict] = []
        b = self.b
        b.phases(0, 2, 9, 10)
        for pod in ("api-a1", "api-a2"):
            b.start_pod(pod, -1, endpoint_delay=0)
            b.event(-0.8, pod, EventKind.ENDPOINT_ADDED, hop="ingress", upstream=UP[pod])
        b.start_pod("api-b1", 2.9, endpoint_delay=0.1)
        b.event(3.2, "api-b1", EventKind.ENDPOINT_ADDED, hop="ingress", upstream=UP["api-b1"])
        stop = 4.0 + (prestop or 0)
        b.event(4.0, "api-a1", EventKind.DELETION_REQUESTED).event(4.0, "api-a1", EventKind.ENDPOINT_TERMINATING)
        if prestop:
            b.event(4.0, "api-a1", EventKind.PRESTOP_STARTED).event(stop, "api-a1", EventKind.PRESTOP_FINISHED)
        b.event(stop, "api-a1", EventKind.SIGTERM_SENT).app(stop + 0.001, "api-a1", "sigterm_received")
        b.app(stop + 0.002, "api-a1", "listener_closed").app(stop + 0.01, "api-a1", "exiting", code=0)
        b.event(stop + 0.02, "api-a1", EventKind.APP_EXITED, exit_code=0)
        b.event(5.0, "api-a1", EventKind.ENDPOINT_REMOVED)
        b.event(5.8, "api-a1", EventKind.ENDPOINT_REMOVED, hop="ingress", upstream=UP["api-a1"])

    def ok(self, t: float, pod: str, retries: int = 0) -> None:
        seq = len(self.b.rows)
        self.b.request(t, pod=pod)
        self.log.append({"seq": seq, "t": t, "status": 200, "up": UP[pod], "retries": retries})

    def proxy_error(self, t: float, pod: str, status: int = 502) -> None:
        seq = len(self.b.rows)
        self.b.request(t, Outcome.HTTP_502, status=status, latency_ms=1)
        self.log.append({"seq": seq, "t": t, "status": status, "up": UP[pod], "retries": 0})

    def write(self) -> Path:
        d = self.b.write()
        (d / "ingress").mkdir()
        with open(d / "ingress" / "access.log", "w") as f:
            for r in self.log:
                f.write(json.dumps({"DownstreamStatus": r["status"], "OriginStatus": 0 if r["status"] == 502 else 200,
                                    "Duration": 1_000_000, "OriginDuration": 800_000, "RetryAttempts": r["retries"],
                                    "ServiceAddr": r["up"], "ServiceURL": f"http://{r['up']}",
                                    "StartUTC": iso(r["t"]), "request_X-Request-Id": str(r["seq"])}) + "\n")
            f.write('{"StartUTC": "1970-01-01T00:00:01Z", "DownstreamStatus": 200}\n')  # a probe: no request id
        return d


def steady(run: IngressRun, until: float = 10.0) -> None:
    t = 0.0
    while t < until:
        pods = ["api-a2", "api-b1"] if t >= 5.8 else ["api-a1", "api-a2"] + (["api-b1"] if t >= 3.2 else [])
        pod = pods[int(t * 20) % len(pods)]
        if not (pod == "api-a1" and 4.0 <= t < 5.8):
            run.ok(t, pod)
        t = round(t + 0.05, 3)


def test_proxy_502s_go_to_the_pod_the_access_log_names_and_the_ingress_is_the_slowest_hop(tmp_path):
    run = IngressRun(tmp_path / "r")
    steady(run)
    for k in range(9):  # 4.1 .. 5.7: after kube-proxy dropped a1 at 5.0 too
        run.proxy_error(4.1 + k * 0.2, "api-a1")
    a = analyse(run.write())
    att = a.attributed
    assert len(att) == 9
    assert set(att["how"]) == {"ingress-log"} and set(att["pod"]) == {"api-a1"}
    # the ingress's lag decides the phase: still routed to, so "terminating" up to 5.8 s
    assert set(att["phase"]) == {"terminating"}
    top = a.findings[0]
    assert top["rule"] == "no-prestop" and top["failures"] == 9 and a.summary["unexplained"] == 0
    assert top["evidence"]["slowest_hop"] == "ingress"
    assert top["evidence"]["hop_lag_s"] == {"kube-proxy": 1.0, "ingress": 1.8}
    assert "preStop sleep >= 2.5 s" in top["fix"] and "ingress: 1.80 s" in top["fix"]
    chain = next(c for c in a.chains if c["pod"] == "api-a1")
    labels = [s["label"] for s in chain["steps"]]
    assert labels.index("removed from endpoints") < labels.index("removed from the ingress")
    assert chain["ingress_lag_s"] == 1.8 and chain["endpoint_lag_s"] == 1.0
    ing = a.summary["ingress"]
    assert ing["proxy_5xx"] == {"502": 9} and ing["not_logged"] == 0


def test_prestop_covering_kube_proxy_but_not_the_ingress(tmp_path):
    run = IngressRun(tmp_path / "r", prestop=1.5)
    steady(run)
    for k in range(3):  # 5.55 .. 5.75: a1 stopped listening at 5.5, the ingress dropped it at 5.8
        run.proxy_error(5.55 + k * 0.1, "api-a1")
    a = analyse(run.write())
    top = a.findings[0]
    assert top["rule"] == "prestop-too-short" and top["failures"] == 3
    assert "slowest hop (ingress)" in top["title"]
    assert "from 1.5 s to >= 2.5 s" in top["fix"]


def test_a_502_from_a_serving_pod_is_an_upstream_keepalive_mismatch(tmp_path):
    run = IngressRun(tmp_path / "r", env={"KEEPALIVE_TIMEOUT": "1"})
    steady(run)
    run.proxy_error(2.5, "api-a2")  # api-a2 is never deleted: it was serving
    run.proxy_error(3.5, "api-b1")
    a = analyse(run.write())
    f = next(f for f in a.findings if f["rule"] == "upstream-keepalive")
    assert f["failures"] == 2 and f["evidence"]["by_pod"] == {"api-a2": 1, "api-b1": 1}
    assert "idleConnTimeout" in f["fix"] and "0.5 s" in f["fix"] and "Connection: close" in f["fix"]
    assert f["evidence"]["app_keepalive_timeout_s"] == 1.0 and f["evidence"]["upstream_idle_timeout_s"] == 90
    assert f["evidence"]["suggested_upstream_idle_timeout_s"] == 0.5


def test_a_proxy_idle_timeout_already_below_the_apps_is_not_suggested_again(tmp_path):
    """The mismatch can remain with the proxy's idle timeout below the app's, when the margin is
    shorter than the proxy's own delays: the fix then says so instead of repeating the setting."""
    run = IngressRun(tmp_path / "r", env={"KEEPALIVE_TIMEOUT": "1"})
    # 0.5 ms below the app's 1 s, less than the proxy's 0.8 ms failed attempts
    run.b.scenario["traffic"]["ingress"]["upstreamIdleTimeoutSeconds"] = 0.9995
    steady(run)
    run.proxy_error(2.5, "api-a2")
    f = next(f for f in analyse(run.write()).findings if f["rule"] == "upstream-keepalive")
    assert f["evidence"]["suggested_upstream_idle_timeout_s"] is None
    assert "already below" in f["fix"] and "Raise the app's keep-alive" in f["fix"]
    assert f["evidence"]["suggested_app_keepalive_timeout_s"] == 2.0  # the proxy's 0.9995 s + at least 1 s


def test_keepalive_fix_sizes_the_margin_by_the_proxys_own_delays():
    from harness.analysis.ingress_rules import keepalive_fix

    # seconds: 1 s below the app's leaves far more than the proxy's milliseconds
    text, idle, app = keepalive_fix(90, 5.0, held_ms=12.0)
    assert idle == 4.0 and "to 4 s" in text
    # milliseconds: half of 20 ms leaves 10 ms, less than a 40 ms failed attempt: raise the app's
    text, idle, app = keepalive_fix(90, 0.02, held_ms=40.0)
    assert idle is None and app > 90 and "no safe idle timeout" in text and "40 ms" in text
    # the proxy far below the app's and failures left: not the idle timeout, nothing to set
    text, idle, app = keepalive_fix(90, 120.0, held_ms=50.0)
    assert idle is None and app is None and "not the app's idle timeout" in text
    # unknown app timeout: no number for the proxy
    text, idle, app = keepalive_fix(90, None, held_ms=None)
    assert idle is None and app is None and "below the app's keep-alive" in text


def test_the_proxys_500_for_a_closed_idle_connection_counts_when_its_log_says_so(tmp_path):
    """Go's transport answers a non-replayable request on a reused connection
    the server closed with "server closed idle connection", which Traefik turns
    into 500; the app's keep-alive timeout may come with the rollout's change."""
    run = IngressRun(tmp_path / "r")
    run.b.scenario["disruption"]["change"]["env"]["KEEPALIVE_TIMEOUT"] = "0.5"
    steady(run)
    run.proxy_error(2.5, "api-a2", status=500)
    run.proxy_error(3.5, "api-b1")
    d = run.write()
    a = analyse(d)
    f = next(f for f in a.findings if f["rule"] == "upstream-keepalive")
    assert f["failures"] == 1, "a 500 without the proxy saying why is not claimed"
    (d / "ingress" / "traefik.log").write_text(json.dumps(
        {"level": "debug", "message": "500 Internal Server Error", "error": "http: server closed idle connection"}) + "\n")
    f = next(f for f in analyse(d).findings if f["rule"] == "upstream-keepalive")
    assert f["failures"] == 2 and f["evidence"]["app_keepalive_timeout_s"] == 0.5
    assert "502 or 500" in f["cause"]


def test_retries_absorbed_are_counted_without_failures(tmp_path):
    run = IngressRun(tmp_path / "r", retries=3)
    steady(run, until=4.0)
    run.ok(4.1, "api-a2", retries=1)
    run.ok(4.3, "api-b1", retries=2)
    a = analyse(run.write())
    assert a.summary["service_failed"] == 0
    f = next(f for f in a.findings if f["rule"] == "ingress-retries")
    assert f["failures"] == 0 and f["evidence"]["absorbed"] == 2 and f["evidence"]["retry_attempts"] == 3
    assert a.summary["ingress"]["retries_absorbed"] == 2
    assert a.summary["verdict"]["status"] == "pass"


def test_a_run_without_the_ingress_is_unchanged(tmp_path):
    b = RunBuilder(tmp_path / "r")
    b.phases(0, 1, 2, 3)
    b.start_pod("api-a1", -1, endpoint_delay=0)
    b.steady(0, 3, 50, lambda t: ["api-a1"])
    a = analyse(b.write())
    assert a.summary["ingress"] is None and "upstream_pod" not in a.run.requests.columns
    assert a.findings == []
