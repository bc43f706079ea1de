"""The local platform against real processes of a tiny app: liveness
restarts, startup probes, preStop exec + SIGKILL at the end of the grace
period, Recreate, and the order of every lifecycle event."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from harness.errors import PlatformError
from harness.model.clock import RunClock
from harness.model.events import EventWriter, read_events
from harness.model.scenario import scenario_from_dict
from harness.platforms import make_platform
from harness.traffic.preflight import wait_until_serving

pytestmark = pytest.mark.slow

APP = textwrap.dedent('''
    import asyncio, json, os, signal, sys, time
    def log(event, **kw):
        print(json.dumps({"ts": time.time(), "pod": os.environ["POD_NAME"], "event": event, **kw}), flush=True)
    if os.environ.get("IGNORE_SIGTERM") == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    started = time.monotonic()
    fail_after = float(os.environ.get("LIVENESS_FAIL_AFTER", "1e9"))
    async def handle(reader, writer):
        line = await reader.readline()
        while (await reader.readline()) not in (b"\\r\\n", b""):
            pass
        path = line.split()[1] if len(line.split()) > 1 else b"/"
        status = 500 if path == b"/healthz" and time.monotonic() - started > fail_after else 200
        writer.write(b"HTTP/1.1 %d X\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n" % status)
        await writer.drain()
        writer.close()
    async def main():
        server = await asyncio.start_server(handle, os.environ["HOST"], int(os.environ["PORT"]))
        log("listening")
        print("a plain line, not JSON", flush=True)
        async with server:
            await server.serve_forever()
    asyncio.run(main())
''')


def scenario(tmp_path: Path, **deployment):
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = deployment.pop("env", {})
    return scenario_from_dict({
        "name": "kubelet",
        "app": {"command": [sys.executable, str(app)], "env": env},
        "deployment": {"replicas": 1, "terminationGracePeriodSeconds": 3, "progressDeadlineSeconds": 20,
                       **deployment},
        "disruption": {"type": "restart"},
        "local": {"endpointPropagationDelaySeconds": 0.1, "endpointPropagationJitterSeconds": 0.0, "seed": 3},
    })


def run_platform(tmp_path: Path, sc, body, *, serving: bool = True) -> list[dict]:
    run_dir = tmp_path / "run"

    async def main():
        clock = RunClock.start()
        events = EventWriter(run_dir / "events.jsonl")
        try:
            async with make_platform("local", sc, run_dir, clock, events) as platform:
                await platform.deploy()
                if serving:  # as the runner does: every replica serves before anything else happens
                    await wait_until_serving(platform.target_url(), resolver=platform.resolver(), need=1,
                                             pods=sc.deployment.replicas, deadline_s=20)
                await body(platform)
        finally:
            events.close()

    anyio.run(main)
    return read_events(run_dir)


def kinds_of(events, pod=None) -> list[str]:
    return [e["kind"] for e in events if pod is None or e["pod"] == pod]


def test_liveness_failure_restarts_the_container(tmp_path):
    sc = scenario(tmp_path, env={"LIVENESS_FAIL_AFTER": "0.3"},
                  livenessProbe={"httpGet": {"path": "/healthz"}, "periodSeconds": 0.2, "failureThreshold": 2})

    async def body(platform):
        with anyio.fail_after(20):
            while kinds_of(read_events(tmp_path / "run")).count("container_started") < 2:
                await anyio.sleep(0.05)

    events = run_platform(tmp_path, sc, body, serving=False)  # its liveness fails by design
    pod = events[0]["pod"]
    k = kinds_of(events, pod)
    i = k.index("sigterm_sent")
    assert k[:i].count("probe_failed") >= 2
    assert [e["detail"]["reason"] for e in events if e["kind"] == "sigterm_sent"][0].startswith("liveness")
    assert "app_exited" in k[i:] and "container_started" in k[i:]
    assert [e["detail"]["restarts"] for e in events if e["kind"] == "container_started"][:2] == [0, 1]
    assert "pod_deleted" not in k and "deletion_requested" not in k


def test_prestop_exec_then_sigterm_then_sigkill_when_the_app_ignores_it(tmp_path):
    marker = tmp_path / "prestop-ran"
    sc = scenario(tmp_path, env={"IGNORE_SIGTERM": "1"}, terminationGracePeriodSeconds=2.5,
                  lifecycle={"preStop": {"exec": {"command": ["sh", "-c", f"sleep 0.2; touch {marker}"]}}})
    events = run_platform(tmp_path, sc, lambda platform: platform.disrupt())
    old = events[0]["pod"]
    k = kinds_of(events, old)
    assert "endpoint_removed" in k[k.index("deletion_requested"):]  # it races the termination
    k = [x for x in k if x not in ("app_log", "probe_failed", "endpoint_removed")]
    assert k[k.index("deletion_requested"):] == [
        "deletion_requested", "endpoint_terminating", "prestop_started", "prestop_finished", "sigterm_sent",
        "sigkill_sent", "app_exited", "not_ready", "pod_deleted"]
    assert marker.exists()
    exited = [e for e in events if e["pod"] == old and e["kind"] == "app_exited"][0]
    assert exited["detail"]["exit_code"] == 137
    # the app's JSON log became an event; its plain line did not break anything
    assert any(e["kind"] == "app_log" and e["detail"]["event"] == "listening" and e["source"] == "app-log"
               for e in events)
    assert "a plain line, not JSON" in (tmp_path / "run" / "logs" / f"{old}.log").read_text()


def test_startup_probe_gates_readiness(tmp_path):
    # failureThreshold 100: the app may take seconds to start on a loaded machine, and a startup
    # probe that runs out of failures restarts the container (as the kubelet does), never ready
    sc = scenario(tmp_path, startupProbe={"httpGet": {"path": "/healthz"}, "periodSeconds": 0.2, "failureThreshold": 100},
                  readinessProbe={"tcpSocket": {}, "periodSeconds": 0.2})
    events = run_platform(tmp_path, sc, lambda platform: anyio.sleep(0))
    k = kinds_of(events, events[0]["pod"])
    assert k.index("container_started") < k.index("startup_probe_ok") < k.index("ready") < k.index("endpoint_added")


def test_recreate_stops_every_old_pod_before_the_first_new_one(tmp_path):
    sc = scenario(tmp_path, replicas=2, strategy={"type": "Recreate"})
    events = run_platform(tmp_path, sc, lambda platform: platform.disrupt())
    start = kinds_of(events).index("rollout_started")
    after = events[start:]
    last_old_gone = max(i for i, e in enumerate(after) if e["kind"] == "pod_deleted")
    first_new = min(i for i, e in enumerate(after) if e["kind"] == "pod_created")
    assert last_old_gone < first_new
    assert kinds_of(after).count("pod_created") == 2


def test_a_rollout_that_never_becomes_ready_hits_the_progress_deadline(tmp_path):
    sc = scenario(tmp_path, progressDeadlineSeconds=2,
                  readinessProbe={"exec": {"command": ["sh", "-c", "test \"$APP_VERSION\" != 2"]}, "periodSeconds": 0.2})
    sc.disruption.type = "rollingUpdate"

    async def body(platform):
        await platform.disrupt()

    with pytest.raises(PlatformError, match="progressDeadlineSeconds"):
        run_platform(tmp_path, sc, body)
    events = read_events(tmp_path / "run")
    from tests.test_runner import replica_pids, wait_dead

    pids = replica_pids(tmp_path / "run")
    assert len(pids) == 2

    assert not wait_dead(pids, timeout=10)
