"""Real rollouts on the local platform: real replica processes of the sample
app, real traffic (>= 500 req/s, keep-alive and new connections), the
shipped scenarios with shorter phases (one rollout per scenario per test
session, shared with tests/analysis/test_real_runs.py: tests/conftest.py). Assertions are about which failures
happen (presence, absence, kinds), never about timings, so a loaded 2-core
machine passes them too. Plus: the harness killed mid-run leaves no replica
behind and a readable run dir; bad input and an app that cannot start give
the right exit codes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.model.events import read_events
from harness.model.requests import read_requests_table

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


def harness(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def shipped(real_rollout, name: str) -> tuple[subprocess.CompletedProcess, Path]:
    """The session's one rollout of a shipped scenario (tests/conftest.py)."""
    run = real_rollout(name)
    return run.proc, run.out


def outcomes(run_dir: Path) -> Counter:
    table, complete = read_requests_table(run_dir)
    assert complete
    return Counter(table.column("outcome").combine_chunks().cast("string").to_pylist())


def failures(run_dir: Path) -> Counter:
    c = outcomes(run_dir)
    c.pop("ok", None)
    c.pop("dropped", None)  # the engine's, not the service's
    return c


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


class Replica(int):
    """A replica's pid that knows its pod's port: under load the pid space
    wraps (pid_max 32768), so a pid alone may name another process later."""

    port: int | None = None

    def __new__(cls, pid: int, port: int | None = None):
        self = super().__new__(cls, pid)
        self.port = port
        return self


def replica_pids(run_dir: Path) -> list[Replica]:
    return [Replica(e["detail"]["pid"], e["detail"].get("port")) for e in read_events(run_dir)
            if e["kind"] == "container_started"]


def alive(pid: int) -> bool:
    """The process lives (not a zombie) and, for a Replica, is still that pod's
    replica (its environment has the pod's PORT), not a later reuse of the pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        port = getattr(pid, "port", None)
        if port is None:
            return True
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f"PORT={port}".encode() in f.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, IndexError, PermissionError):
        return False


def wait_dead(pids: list[int], timeout: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def assert_rolled_out(proc, run_dir: Path) -> None:
    m = manifest(run_dir)
    assert m["status"] == "complete", (m.get("error"), proc.stderr[-2000:])
    kinds = Counter(e["kind"] for e in read_events(run_dir))
    assert kinds["rollout_started"] == 1 and kinds["rollout_complete"] == 1, kinds
    assert kinds["pod_created"] == 8 and kinds["pod_deleted"] == 4, kinds
    table, _ = read_requests_table(run_dir)
    reused = table.column("conn_reused").to_pylist()
    assert any(reused) and not all(reused), "both keep-alive and new-connection traffic"
    assert table.num_rows >= 500 * 4, ("at least 500 req/s", table.num_rows)
    assert not wait_dead(replica_pids(run_dir))


# ---- the shipped scenarios ----------------------------------------------------------------

@pytest.mark.slow
def test_best_practice_drops_nothing(real_rollout):
    proc, out = shipped(real_rollout, "best-practice")
    assert_rolled_out(proc, out)
    assert failures(out) == Counter()
    assert proc.returncode == 0


@pytest.mark.slow
def test_no_prestop_refuses_new_connections_during_terminations(real_rollout):
    proc, out = shipped(real_rollout, "no-prestop")
    assert_rolled_out(proc, out)
    f = failures(out)
    assert f["refused"] > 0, f
    assert set(f) <= {"refused", "closed", "reset"}, f
    # the refusals hit pods that had been deleted but were still in the proxy's view
    table, _ = read_requests_table(out)
    deleted = {e["pod"] for e in read_events(out) if e["kind"] == "deletion_requested"}
    refused_pods = {p for p, o in zip(table.column("route_pod").to_pylist(),
                                      table.column("outcome").combine_chunks().cast("string").to_pylist())
                    if o == "refused"}
    assert refused_pods and refused_pods <= deleted, (refused_pods, deleted)


@pytest.mark.slow
def test_no_graceful_shutdown_cuts_requests_in_flight(real_rollout):
    proc, out = shipped(real_rollout, "no-graceful-shutdown")
    assert_rolled_out(proc, out)
    f = failures(out)
    assert f["closed"] + f["reset"] > 0, f
    assert set(f) <= {"closed", "reset", "refused"}, f


@pytest.mark.slow
def test_short_grace_kills_slow_requests(real_rollout):
    proc, out = shipped(real_rollout, "short-grace")
    assert_rolled_out(proc, out)
    assert any(e["kind"] == "sigkill_sent" for e in read_events(out)), "the grace period ran out"
    f = failures(out)
    assert f["closed"] + f["reset"] > 0, f
    assert set(f) <= {"closed", "reset", "refused"}, f


@pytest.mark.slow
def test_no_readiness_probe_sends_traffic_to_cold_pods(real_rollout):
    proc, out = shipped(real_rollout, "no-readiness-probe")
    assert_rolled_out(proc, out)
    f = failures(out)
    assert f["http_503"] > 0, f
    # every 503 came from a pod before the app said it was warm
    warm_at = {e["pod"]: e["t_ns"] for e in read_events(out) if e["kind"] == "app_log"
               and e["detail"].get("event") == "ready"}
    table, _ = read_requests_table(out)
    rows = zip(table.column("pod").to_pylist(), table.column("ended_ns").to_pylist(),
               table.column("outcome").combine_chunks().cast("string").to_pylist())
    cold = [(pod, ended) for pod, ended, o in rows if o == "http_503"]
    assert cold and all(ended <= warm_at.get(pod, 1 << 62) + 50_000_000 for pod, ended in cold)


@pytest.mark.slow
def test_abrupt_keepalive_resets_established_connections(real_rollout):
    proc, out = shipped(real_rollout, "abrupt-keepalive")
    m = manifest(out)
    assert m["status"] == "complete", m.get("error")
    f = failures(out)
    assert f["reset"] > 0, f
    assert "refused" not in f, "keep-alive only: nothing dials a stopped pod"
    assert not wait_dead(replica_pids(out))


# ---- any app, bad input, an app that cannot start -------------------------------------------

def write_scenario(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "scenario.yaml"
    p.write_text(text)
    return p


@pytest.mark.slow
def test_a_users_own_app_without_json_logs_rolls_out(tmp_path):
    sc = write_scenario(tmp_path, """
name: own-app
app:
  command: ["{python}", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
deployment:
  replicas: 2
  terminationGracePeriodSeconds: 3
  readinessProbe: {tcpSocket: {}, periodSeconds: 0.5}
  lifecycle: {preStop: {sleep: {seconds: 0.5}}}
traffic: {rate: 100, path: /, newConnectionRatio: 0.5, workers: 2}
disruption: {baselineSeconds: 1, settleSeconds: 1}
local: {endpointPropagationDelaySeconds: 0.2, endpointPropagationJitterSeconds: 0.05}
""")
    out = tmp_path / "run"
    proc = harness("run", str(sc), "--out", str(out), "--no-report", "-q")
    assert proc.returncode == 0, proc.stderr
    assert manifest(out)["status"] == "complete"
    assert failures(out) == Counter()
    # traffic.workers: 2 engine processes, each routed by the platform's kube-proxy view
    assert manifest(out)["generator"]["workers"] == 2
    table, _ = read_requests_table(out)
    assert set(table.column("worker").to_pylist()) == {0, 1}
    assert None not in table.column("route_pod").to_pylist()
    assert len(list((out / "logs").glob("api-*.log"))) == 4
    assert not wait_dead(replica_pids(out))


@pytest.mark.slow
def test_a_failed_gate_exits_1_without_the_report_too(real_rollout):
    """CI reads the exit code: --no-report (as the session's shipped runs use
    it) skips the charts and the page, not the gate."""
    run = real_rollout("no-prestop")
    run.require_conclusive()
    assert run.analysis.summary["verdict"]["status"] == "fail"
    assert run.proc.returncode == 1, run.proc.stdout[-2000:] + run.proc.stderr[-2000:]
    assert run.proc.stdout.startswith("FAIL") and not (run.out / "index.html").exists()


def test_a_wrong_field_fails_validation_naming_it(tmp_path):
    sc = write_scenario(tmp_path, "name: bad\ndeployment:\n  replicas: 4\n  maxSurge: 1\n")
    out = tmp_path / "run"
    proc = harness("run", str(sc), "--out", str(out), timeout=60)
    assert proc.returncode == 2
    assert "deployment.maxSurge" in proc.stderr and "unknown field" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_an_unknown_platform_is_bad_input(tmp_path):
    sc = write_scenario(tmp_path, "name: ok\n")
    proc = harness("run", str(sc), "--platform", "mars", "--out", str(tmp_path / "run"), timeout=60)
    assert proc.returncode == 2 and "mars" in proc.stderr
    assert not (tmp_path / "run").exists()


def test_bad_platform_config_found_at_deploy_is_bad_input_with_no_run_dir(tmp_path):
    # The kubernetes platform checks its kubeconfig only when it deploys, after the
    # run dir exists: the run must still exit 2 with the platform's message, no traceback,
    # and leave no half-written run dir.
    sc = write_scenario(tmp_path, "name: ok\n")
    out = tmp_path / "run"
    proc = harness("run", str(sc), "--platform", "kubernetes", "--out", str(out),
                   "--set", f"kubernetes.kubeconfig={tmp_path / 'no-such-kubeconfig'}", timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "kubeconfig" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("command,expect", [
    ('["{python}", "-c", "print(\'boom: no config\'); raise SystemExit(3)"]', "boom: no config"),
    ('["{python}", "-c", "import time; print(\'stuck\', flush=True); time.sleep(600)"]', "progressDeadlineSeconds"),
    ('["/nonexistent/app-binary", "{port}"]', "/nonexistent/app-binary"),
], ids=["exits-at-once", "never-ready", "no-such-command"])
def test_an_app_that_cannot_start_is_inconclusive_and_leaves_nothing(tmp_path, command, expect):
    sc = write_scenario(tmp_path, f"""
name: cannot-start
app:
  command: {command}
deployment:
  replicas: 2
  progressDeadlineSeconds: 3
  readinessProbe: {{httpGet: {{path: /ready}}, periodSeconds: 0.5}}
disruption: {{baselineSeconds: 1, settleSeconds: 1}}
""")
    out = tmp_path / "run"
    proc = harness("run", str(sc), "--out", str(out), "--no-report", "-q", timeout=120)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert expect in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert manifest(out)["status"] == "deploy_failed"
    assert not wait_dead(replica_pids(out))


# ---- killing the harness ----------------------------------------------------------------------

def start_run(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    path = SCENARIOS / "best-practice.yaml"
    if not path.exists():
        pytest.skip(f"scenario {path} is not shipped yet")
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(path), "--out", str(out), "--no-report",
                             "-q", "--set", "disruption.baselineSeconds=60", "--set", "app.env.WARMUP_SECONDS=0.5"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # until traffic flows
        evs = read_events(out) if out.exists() else []
        if any(e["kind"] == "phase" for e in evs) and list((out / "requests").glob("*.arrow")):
            time.sleep(1.5)  # a few flushed batches
            return proc, out
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"the run did not start: {proc.communicate()[1][-2000:]}")


@pytest.mark.slow
def test_ctrl_c_tears_down_and_leaves_a_readable_run_dir(tmp_path):
    proc, out = start_run(tmp_path)
    pids = replica_pids(out)
    assert len(pids) == 4 and all(alive(p) for p in pids)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert not wait_dead(pids, timeout=5)
    assert manifest(out)["status"] == "interrupted"
    table, complete = read_requests_table(out)
    assert complete and table.num_rows > 0
    assert json.loads((out / "summary.json").read_text())["total"] == table.num_rows


@pytest.mark.slow
def test_sigkill_of_the_harness_takes_the_replicas_with_it(tmp_path):
    proc, out = start_run(tmp_path)
    pids = replica_pids(out)
    assert len(pids) == 4 and all(alive(p) for p in pids)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert not wait_dead(pids), "replicas outlived a SIGKILLed harness"
    assert manifest(out)["status"] == "running"  # it could not say more, but the run dir is readable
    table, _ = read_requests_table(out)
    assert table.num_rows > 0
    assert any(e["kind"] == "phase" for e in read_events(out))


@pytest.mark.slow
def test_a_crash_mid_rollout_still_leaves_a_readable_run_dir(tmp_path, monkeypatch):
    import harness.runner as runner
    from harness.model.scenario import load_scenario
    from harness.platforms.local import LocalPlatform

    class Crashing(LocalPlatform):
        async def disrupt(self):
            raise RuntimeError("a bug in the harness")

    monkeypatch.setattr(runner, "make_platform", lambda name, *a: Crashing(*a))
    sc = load_scenario(write_scenario(tmp_path, """
name: crash
app:
  command: ["{python}", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
deployment: {replicas: 2, readinessProbe: {tcpSocket: {}, periodSeconds: 0.5}}
traffic: {rate: 200, path: /}
disruption: {baselineSeconds: 1, settleSeconds: 1}
local: {endpointPropagationDelaySeconds: 0.1}
"""))
    outcome = runner.run_scenario(sc, platform="local", run_dir=tmp_path / "run", report=False)
    assert outcome.status == "crashed" and outcome.exit_code == 3
    assert "a bug in the harness" in (tmp_path / "run" / "crash.txt").read_text()
    assert manifest(tmp_path / "run")["status"] == "crashed"
    table, complete = read_requests_table(tmp_path / "run")
    assert complete and table.num_rows > 0
    assert not wait_dead(replica_pids(tmp_path / "run"))


@pytest.mark.slow
def test_a_deleted_pod_not_seen_to_end_is_inconclusive_naming_it(tmp_path, monkeypatch):
    """The observation window closes only when every deleted pod has ended:
    a kubelet that never stops the container (here: its stop step patched
    out) leaves the pod running past its grace period + margin, and the run
    is inconclusive with a reason naming that pod — never a pass."""
    import harness.runner as runner
    from harness.model.scenario import load_scenario
    from harness.platforms.local import platform as local_platform
    from harness.platforms.local.kubelet import Kubelet

    async def never_stops(self, pod, replica, since_ns, reason):
        return None

    monkeypatch.setattr(Kubelet, "_stop_container", never_stops)
    monkeypatch.setattr(local_platform, "END_MARGIN_S", 1.0)
    sc = load_scenario(write_scenario(tmp_path, """
name: stuck-termination
app:
  command: ["{python}", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
deployment: {replicas: 1, terminationGracePeriodSeconds: 1, readinessProbe: {tcpSocket: {}, periodSeconds: 0.5}}
traffic: {rate: 100, path: /}
disruption: {baselineSeconds: 1, settleSeconds: 1}
local: {endpointPropagationDelaySeconds: 0.1}
"""))
    outcome = runner.run_scenario(sc, platform="local", run_dir=tmp_path / "run", report=True)
    assert outcome.status == "observation_incomplete" and outcome.exit_code == 3, outcome.error
    m = manifest(tmp_path / "run")
    assert m["observation"]["complete"] is False and "did not end within its grace period" in m["observation"]["reason"]
    v = outcome.summary["verdict"]
    assert v["status"] == "inconclusive"
    deleted = [e["pod"] for e in read_events(tmp_path / "run") if e["kind"] == "deletion_requested"]
    assert deleted and f"pod {deleted[0]}" in v["headline"], v
    assert not wait_dead(replica_pids(tmp_path / "run"))


def test_run_guarded_says_how_the_loop_ended(tmp_path):
    """The guard run and run --repeat share: Ctrl-C is "interrupted"; a crash
    is "crashed" with crash.txt; bad input is raised with the dir removed."""
    from harness.errors import BadInput
    from harness.runner import run_guarded

    async def ends(exc: BaseException | None = None) -> None:
        if exc is not None:
            raise exc

    assert run_guarded(ends, tmp_path) is None
    assert run_guarded(lambda: ends(KeyboardInterrupt()), tmp_path) == ("interrupted", None)
    assert run_guarded(lambda: ends(ValueError("boom")), tmp_path) == ("crashed", "ValueError: boom")
    assert "ValueError: boom" in (tmp_path / "crash.txt").read_text()
    closed = []
    with pytest.raises(BadInput, match="no such context"):
        run_guarded(lambda: ends(ExceptionGroup("tg", [BadInput("no such context")])), tmp_path,
                    before_removal=lambda: closed.append(True))
    assert closed == [True] and not tmp_path.exists()
