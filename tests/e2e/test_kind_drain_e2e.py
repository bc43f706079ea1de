"""Node drains on the multi-node kind cluster (one control plane, two
workers: deploy/kind/kind-config-multinode.yaml), the second phase of
``make kind-e2e``. First the network the drains depend on: with the
stand-in CNI (not kindnetd, docs/kind.md), a pod on every node reaches a pod
on every other node, directly and through a Service's ClusterIP (its DNS
name is not checked: CoreDNS does not run on these nodes, docs/kind.md).
Then the four drain scenarios through the real command line, each
with the verdict and top finding the local platform gives
(tests/sample_app/test_drain_scenarios.py holds the same table):

- drain-best-practice: pass (0 failed; the PDB lets one eviction go at a
  time, a few 429s);
- drain-no-pdb: fail, top finding ``no-pdb`` (the 3 pods of one worker
  evicted at once, 0 429s);
- drain-pdb-blocks: inconclusive, top finding ``pdb-blocks-drain`` (every
  eviction 429 until the drain's timeout, nothing evicted);
- drain-single-replica: fail, top finding ``single-replica`` (the only pod
  evicted, 0 429s).

A run that comes out inconclusive for another reason than the drain
(usually the engine fell behind its schedule on a loaded machine) is
retried once, then fails with its reason. Every worker is schedulable again
after each run (the drain uncordons).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from harness.model.events import read_events
from tests.e2e.conftest import ROOT
from tests.e2e.test_kind_e2e import CONTEXT, IMAGE, NODE_PORT, kind_kubeconfig, wait_node_port_free  # noqa: F401

pytestmark = [pytest.mark.kind, pytest.mark.slow]

#: make kind-e2e sets it for its multi-node phase: there a cluster without two
#: workers is a failure, elsewhere a reason to skip
REQUIRED_ENV = "ROLLOUT_HARNESS_KIND_MULTINODE"
SHORTER = ["disruption.baselineSeconds=3", "disruption.settleSeconds=2"]
#: drain-pdb-blocks waits for its drain's timeout: a shorter one (still 3 tries per pod)
BLOCKED_TIMEOUT = "disruption.drain.timeoutSeconds=15"
#: scenario -> (verdict, top finding), as on the local platform
EXPECTED = {
    "drain-best-practice": ("pass", None),
    "drain-no-pdb": ("fail", "no-pdb"),
    "drain-pdb-blocks": ("inconclusive", "pdb-blocks-drain"),
    "drain-single-replica": ("fail", "single-replica"),
}
#: what a client pod runs: GET every target until it answers or the deadline
#: passes (bounded: one try per second, 2 s each), then one JSON line of results
PROBE = """
import json, sys, time, urllib.request
targets, deadline = json.loads(sys.argv[1]), time.monotonic() + float(sys.argv[2])
results = {}
for url in targets:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                results[url] = "ok %d" % r.status
                break
        except Exception as exc:
            results[url] = "%s: %s" % (type(exc).__name__, exc)
            if time.monotonic() > deadline:
                break
            time.sleep(1)
print(json.dumps(results))
sys.exit(0 if all(v.startswith("ok") for v in results.values()) else 1)
"""
TOLERATE_ALL = [{"operator": "Exists"}]


def _api(kubeconfig: Path):
    from harness.platforms.kubernetes.client import load_api
    return load_api(kubeconfig=str(kubeconfig), context=CONTEXT)


def _nodes(kubeconfig: Path) -> list[dict]:
    return _api(kubeconfig)._call("GET", "/api/v1/nodes").get("items") or []


@pytest.fixture(scope="module")
def nodes(kind_kubeconfig) -> list[dict]:
    items = _nodes(kind_kubeconfig)
    workers = [n for n in items if "node-role.kubernetes.io/control-plane" not in n["metadata"].get("labels", {})]
    if len(workers) < 2:
        why = (f"the node drains need the multi-node kind cluster (2 workers; this one has {len(workers)}): "
               "make kind-up KIND_CONFIG=deploy/kind/kind-config-multinode.yaml")
        if os.environ.get(REQUIRED_ENV):
            pytest.fail(why)
        pytest.skip(why)
    return items


def _pod(name: str, node: str, labels: dict, command: list[str], probe: bool = False) -> dict:
    container = {"name": "main", "image": IMAGE, "imagePullPolicy": "IfNotPresent", "command": command,
                 "env": [{"name": "PORT", "value": "8080"}]}
    if probe:
        container["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"nodeName": node, "tolerations": TOLERATE_ALL, "restartPolicy": "Never",
                     "terminationGracePeriodSeconds": 1, "containers": [container]}}


def _wait(what: str, check, timeout_s: float = 90.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(1)
    pytest.fail(f"{what}: not within {timeout_s:.0f} s")


def test_pods_reach_pods_and_services_on_other_nodes(kind_kubeconfig, nodes):
    """One server pod (the sample app) and one Service per node; on every
    node a client pod GETs /healthz of the servers on the other nodes by pod
    IP and by ClusterIP (kube-proxy on the client's node)."""
    api = _api(kind_kubeconfig)
    ns = f"rh-netcheck-{uuid.uuid4().hex[:6]}"
    names = [n["metadata"]["name"] for n in nodes]
    api.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    try:
        for i, node in enumerate(names):
            api.create("pods", ns, _pod(f"server-{i}", node, {"server": str(i)}, ["python", "app.py"], probe=True))
            api.create("services", ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"server-{i}"},
                                        "spec": {"selector": {"server": str(i)},
                                                 "ports": [{"port": 80, "targetPort": 8080}]}})

        def servers_ready():
            pods = api.list("pods", ns)[0]
            ready = {p["metadata"]["name"]: p["status"].get("podIP") for p in pods
                     if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))}
            return ready if len(ready) == len(names) else None

        ips = _wait("server pods Ready", servers_ready)
        svc = {i: api.get("services", ns, f"server-{i}")["spec"]["clusterIP"] for i in range(len(names))}
        for i, node in enumerate(names):
            targets = []
            for j in range(len(names)):
                if j != i:
                    targets += [f"http://{ips[f'server-{j}']}:8080/healthz", f"http://{svc[j]}/healthz"]
            api.create("pods", ns, _pod(f"client-{i}", node, {"client": str(i)},
                                        ["python", "-c", PROBE, json.dumps(targets), "30"]))

        def clients_done():
            pods = {p["metadata"]["name"]: p["status"].get("phase") for p in api.list("pods", ns)[0]
                    if p["metadata"]["name"].startswith("client-")}
            return pods if all(ph in ("Succeeded", "Failed") for ph in pods.values()) else None

        phases = _wait("client pods finished", clients_done, timeout_s=120)
        failed = {}
        for i, node in enumerate(names):
            log = api.pod_log_text(ns, f"client-{i}", "main").strip()
            if phases[f"client-{i}"] != "Succeeded":
                failed[node] = log or phases[f"client-{i}"]
        assert not failed, f"cross-node traffic failed (client node: its results): {failed}"
    finally:
        api.delete_namespace(ns)


def _run(name: str, kubeconfig: Path, out: Path) -> tuple[int, dict, dict, str]:
    wait_node_port_free(kubeconfig)
    cmd = [sys.executable, "-m", "harness", "run", str(ROOT / "scenarios" / f"{name}.yaml"),
           "--platform", "kubernetes", "--out", str(out), "--no-report", "--quiet",
           "--set", f"kubernetes.kubeconfig={kubeconfig}", "--set", f"kubernetes.context={CONTEXT}",
           "--set", f"kubernetes.nodePort={NODE_PORT}", "--set", "kubernetes.imagePullPolicy=IfNotPresent",
           "--set", f"app.image={IMAGE}"]
    for s in SHORTER + ([BLOCKED_TIMEOUT] if name == "drain-pdb-blocks" else []):
        cmd += ["--set", s]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=280)
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    done = [e["detail"] for e in read_events(out) if e["kind"] == "drain_complete"] if out.exists() else []
    return proc.returncode, summary, (done[-1] if done else {}), proc.stderr[-3000:] + proc.stdout[-2000:]


@pytest.fixture(scope="module")
def runs_dir() -> Path:
    return ROOT / "reports" / "kind-e2e" / (time.strftime("%Y%m%dT%H%M%S") + "-drain")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_drain_on_kind_as_on_the_local_platform(kind_kubeconfig, nodes, runs_dir, name):
    out = runs_dir / name
    for attempt in (1, 2):
        code, summary, drain, output = _run(name, kind_kubeconfig, out)
        verdict = summary.get("verdict") or {}
        reasons = " ".join(verdict.get("reasons", []))
        blind = verdict.get("status") == "inconclusive" and "drain" not in reasons
        if not blind:
            break
        if attempt == 1:
            out.rename(out.with_name(out.name + "-inconclusive"))
    else:
        pytest.fail(f"{name} on kind: inconclusive twice: {reasons}")
    assert summary, f"{name} on kind: no summary (exit {code}): {output}"
    assert drain, f"{name} on kind: no drain_complete event: {output}"
    assert (verdict["status"], summary["top_finding"]) == EXPECTED[name], (verdict, summary["top_finding"], drain)
    failed = summary["failed"]
    if name == "drain-best-practice":
        assert code == 0 and failed == 0 and drain["complete"] and len(drain["evicted"]) == 3, drain
    elif name == "drain-no-pdb":
        assert failed > 0 and drain["evictions_refused"] == 0 and len(drain["evicted"]) == 3, drain
    elif name == "drain-pdb-blocks":
        assert code == 3 and drain["evicted"] == [] and drain["evictions_refused"] >= 3, drain
    else:
        assert failed > 0 and drain["evictions_refused"] == 0 and len(drain["evicted"]) == 1, drain
    # the drain uncordoned what it cordoned
    cordoned = [n["metadata"]["name"] for n in _nodes(kind_kubeconfig)
                if n.get("spec", {}).get("unschedulable")]
    assert not cordoned, f"{name}: nodes left cordoned: {cordoned}"


def _start_blocked_drain(kubeconfig: Path, out: Path) -> subprocess.Popen:
    """drain-pdb-blocks (every eviction 429) with ``uncordon: false``, up to its
    first 429: the node is cordoned and the drain is retrying."""
    wait_node_port_free(kubeconfig)
    cmd = [sys.executable, "-m", "harness", "run", str(ROOT / "scenarios" / "drain-pdb-blocks.yaml"),
           "--platform", "kubernetes", "--out", str(out), "--no-report", "--quiet",
           "--set", f"kubernetes.kubeconfig={kubeconfig}", "--set", f"kubernetes.context={CONTEXT}",
           "--set", f"kubernetes.nodePort={NODE_PORT}", "--set", "kubernetes.imagePullPolicy=IfNotPresent",
           "--set", f"app.image={IMAGE}", "--set", "disruption.drain.uncordon=false", *sum(
               (["--set", s] for s in SHORTER), [])]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 200
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "events.jsonl").exists() and any(e["kind"] == "eviction_refused" for e in read_events(out)):
            return proc
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"the drain never met a 429 (exit {proc.poll()}): {proc.communicate()[0][-2000:]}")


def _cordoned(kubeconfig: Path) -> dict[str, str | None]:
    from harness.platforms.kubernetes.drain import cordoned_by
    return {n["metadata"]["name"]: cordoned_by(n) for n in _nodes(kubeconfig) if n.get("spec", {}).get("unschedulable")}


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_drain_killed_midway_leaves_no_node_cordoned(kind_kubeconfig, nodes, runs_dir, how):
    """SIGTERM mid-drain: the run uncordons before it exits (130), even with
    ``uncordon: false``. SIGKILL: nothing in the process can; the node keeps
    the mark naming the run, and `rollout-harness cleanup` uncordons it (and
    deletes the run's namespace)."""
    import signal

    out = runs_dir / f"killed-{how}"
    proc = _start_blocked_drain(kind_kubeconfig, out)
    try:
        manifest = json.loads((out / "manifest.json").read_text())
        run_label = manifest["kubernetes"]["run_label"]
        drained = [e["detail"]["node"] for e in read_events(out) if e["kind"] == "node_cordoned"]
        assert len(drained) == 1 and _cordoned(kind_kubeconfig) == {drained[0]: run_label}
        proc.send_signal(getattr(signal, how))
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    if how == "SIGTERM":
        assert proc.returncode == 130, output[-2000:]
        assert _cordoned(kind_kubeconfig) == {}
        return
    assert _cordoned(kind_kubeconfig) == {drained[0]: run_label}  # what a killed run leaves
    cmd = [sys.executable, "-m", "harness", "cleanup", "--kubeconfig", str(kind_kubeconfig), "--context", CONTEXT]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"uncordoning nodes/{drained[0]} (run {run_label})" in done.stdout, done.stdout
    assert _cordoned(kind_kubeconfig) == {}
