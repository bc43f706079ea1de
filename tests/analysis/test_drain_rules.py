"""The drain diagnosis rules (harness.analysis.drain_rules) on hand-made
drain runs: each mistake is the top finding with its fix, the best practice
yields none, and a drain a PDB blocked is inconclusive, never a pass."""

from __future__ import annotations

from harness.analysis import analyse
from harness.model.events import EventKind
from harness.model.outcome import Outcome
from tests.analysis.builders import RunBuilder, scenario_dict


def drain_run(root, *, replicas=4, pdb=None, per_node=None, evict_at=None, refused=(), complete=True,
              overload=False, refused_requests=False, rolling=False):
    """Pods a1..aN from -1 s; the drain starts at 3 s; ``evict_at`` pod -> time;
    each evicted pod leaves the endpoints 1 s later and its replacement
    (b<i>) joins them 3 s after the eviction."""
    dep = {"replicas": replicas, "readinessProbe": {"httpGet": {"path": "/ready"}, "periodSeconds": 1},
           "lifecycle": {"preStop": {"sleep": {"seconds": 2}}},
           "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}
    if pdb:
        dep["podDisruptionBudget"] = pdb
    sc = scenario_dict("drain-test", **dep)
    sc["disruption"] = {"type": "drain", "drain": {"timeoutSeconds": 20}}
    sc["local"]["nodes"] = 2
    b = RunBuilder(root, scenario=sc, rollout_completed=complete)
    b.phases(0, 3, 12, 14)
    pods = [f"api-a{i + 1}" for i in range(replicas)]
    for p in pods:
        b.start_pod(p, -1, endpoint_delay=0)
    per_node = per_node or {"node-1": replicas // 2 + replicas % 2, "node-2": replicas // 2}
    b.event(3, "", EventKind.DRAIN_STARTED, nodes=["node-1"], pods_per_node=per_node, timeout_s=20)
    b.event(3, "", EventKind.NODE_CORDONED, node="node-1")
    evict_at = evict_at or {}
    gone: dict[str, float] = {}
    for i, (p, t) in enumerate(evict_at.items()):
        b.event(t, p, EventKind.EVICTED, code=201, pdb={})
        b.event(t, p, EventKind.DELETION_REQUESTED)
        b.event(t + 1, p, EventKind.ENDPOINT_REMOVED)
        b.event(t + 2.2, p, EventKind.APP_EXITED, exit_code=0)
        gone[p] = t + 1
        b.start_pod(f"api-b{i + 1}", t + 0.1, ready_after=2.0, endpoint_delay=0.9)
    for k, (p, t) in enumerate(refused):
        b.event(t, p, EventKind.EVICTION_REFUSED, code=429, message="Cannot evict pod",
                pdb={"current_healthy": replicas, "desired_healthy": replicas, "disruptions_allowed": 0,
                     "expected_pods": replicas})
    b.event(3 + (20 if not complete else 8), "", EventKind.DRAIN_COMPLETE, complete=complete, nodes=["node-1"],
            evictions_refused=len(refused), evicted=list(evict_at), duration_s=20 if not complete else 8)

    def serving(t):
        out = [p for p in pods if t < gone.get(p, 99)]
        out += [f"api-b{i + 1}" for i, (p, te) in enumerate(evict_at.items()) if t >= te + 3]
        return out

    b.steady(0, 14, 100, serving)
    if overload:
        for i in range(30):
            t = 5 + i * 0.05
            b.request(t, Outcome.HTTP_503, pod="api-a3", route_pod="api-a3")
    if refused_requests:
        for i in range(40):
            b.request(4.1 + i * 0.05, Outcome.REFUSED)
    return b.write()


def test_no_pdb_several_pods_evicted_at_once(tmp_path):
    a = analyse(drain_run(tmp_path, evict_at={"api-a1": 3.0, "api-a2": 3.0}, overload=True))
    top = a.findings[0]
    assert top["rule"] == "no-pdb", [f["rule"] for f in a.findings]
    assert top["failures"] == 30 == a.summary["service_failed"]
    assert top["evidence"]["evicted_within_1s"] == 2 and top["evidence"]["lowest_endpoints"] == 2
    assert "maxUnavailable: 1" in top["fix"]
    assert a.summary["verdict"]["status"] == "fail"


def test_drain_under_a_pdb_without_failures_yields_no_finding(tmp_path):
    a = analyse(drain_run(tmp_path, pdb={"maxUnavailable": 1}, evict_at={"api-a1": 3.0, "api-a2": 8.0},
                          refused=[("api-a2", 3.0)]))
    assert a.findings == []
    assert a.summary["verdict"]["status"] == "pass"


def test_pdb_blocks_the_drain_inconclusive_never_pass(tmp_path):
    refused = [(p, 3.0 + 5 * k) for k in range(5) for p in ("api-a1", "api-a2")]
    a = analyse(drain_run(tmp_path, pdb={"minAvailable": 4}, refused=refused, complete=False))
    top = a.findings[0]
    assert top["rule"] == "pdb-blocks-drain"
    assert top["evidence"]["evictions_refused"] == 10
    assert top["evidence"]["pods_blocked"] == ["api-a1", "api-a2"]
    assert "minAvailable 4" in top["cause"] and "maxUnavailable: 1" in top["fix"]
    assert a.summary["service_failed"] == 0
    assert a.summary["verdict"]["status"] == "inconclusive"


def test_single_replica_outage(tmp_path):
    a = analyse(drain_run(tmp_path, replicas=1, pdb={"maxUnavailable": 1}, per_node={"node-1": 1},
                          evict_at={"api-a1": 3.0}, refused_requests=True))
    top = a.findings[0]
    assert top["rule"] == "single-replica", [f["rule"] for f in a.findings]
    assert top["failures"] == 40 and a.summary["unexplained"] == 0
    assert "replicas >= 2" in top["fix"] and "desiredHealthy 0" in top["cause"]


def test_all_replicas_on_the_drained_node(tmp_path):
    a = analyse(drain_run(tmp_path, replicas=2, per_node={"node-1": 2},
                          evict_at={"api-a1": 3.0, "api-a2": 3.0}, refused_requests=True))
    top = a.findings[0]
    assert top["rule"] == "all-on-one-node", [f["rule"] for f in a.findings]
    assert "topologySpreadConstraints" in top["fix"]
    # no PDB either: named as well, without the failures already explained
    no_pdb = {f["rule"]: f for f in a.findings}["no-pdb"]
    assert no_pdb["failures"] == 0 and "40 requests failed meanwhile, counted under the finding above" in no_pdb["cause"]


def test_rollout_below_the_pdb_is_shown_as_a_fact(tmp_path):
    dep = {"replicas": 2, "podDisruptionBudget": {"minAvailable": 2},
           "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
           "readinessProbe": {"httpGet": {"path": "/ready"}, "periodSeconds": 1}}
    b = RunBuilder(tmp_path, scenario=scenario_dict("below", **dep))
    b.phases(0, 2, 10, 12)
    b.start_pod("api-a1", -1, endpoint_delay=0).start_pod("api-a2", -1, endpoint_delay=0)
    b.event(3, "api-a1", EventKind.DELETION_REQUESTED).event(3.5, "api-a1", EventKind.ENDPOINT_REMOVED)
    b.start_pod("api-b1", 3, ready_after=1.5, endpoint_delay=1.0)  # back at 5.5 s
    b.steady(0, 12, 50, lambda t: ["api-a2"] + (["api-a1"] if t < 3.5 else []) + (["api-b1"] if t >= 5.5 else []))
    a = analyse(b.write())
    rules = {f["rule"]: f for f in a.findings}
    f = rules["rollout-below-pdb"]
    assert f["severity"] == "low" and f["failures"] == 0
    assert f["evidence"]["desired_healthy"] == 2 and f["evidence"]["lowest_endpoints"] == 1
    assert "limits evictions" in f["cause"]


def test_pdb_blocks_because_the_replacement_stays_pending(tmp_path):
    refused = [("api-a2", 3.0 + 5 * k) for k in range(4)]
    root = tmp_path / "run"
    drain_run(root, pdb={"maxUnavailable": 1}, refused=refused, complete=False, evict_at={"api-a1": 3.0})
    # rewrite with a Pending replacement: append the scheduler's refusal
    from harness.model.events import EventWriter

    w = EventWriter(root / "events.jsonl")
    w.emit(int(3.2e9), "api-b9", EventKind.FAILED_SCHEDULING,
           reason="0/2 nodes are available: 1 node(s) were unschedulable, 1 node(s) didn't match pod topology "
                  "spread constraints")
    w.close()
    a = analyse(root)
    f = {x["rule"]: x for x in a.findings}["pdb-blocks-drain"]
    assert "stayed Pending" in f["cause"] and "ScheduleAnyway" in f["fix"]
    assert f["evidence"]["pending_replacements"]["api-b9"].startswith("0/2 nodes")
    assert a.summary["verdict"]["status"] == "inconclusive"


def test_the_summary_and_report_carry_the_drain_figures(tmp_path):
    from harness.report import write_report

    refused = [("api-a2", 3.0)]
    root = drain_run(tmp_path, pdb={"maxUnavailable": 1}, evict_at={"api-a1": 3.0, "api-a2": 8.0},
                     refused=refused)
    s = write_report(root)
    assert s["drain"]["evictions_refused"] == 1 and s["drain"]["complete"]
    html = (root / "index.html").read_text()
    assert "2 pod(s) evicted" in html and "1 eviction(s) refused with 429" in html


def test_pdb_blocks_without_a_readable_pdb_status(tmp_path):
    # target mode on a cluster: the harness may not read the user's PDB
    root = drain_run(tmp_path, pdb={"minAvailable": 4}, refused=[("api-a1", 3.0)], complete=False)
    lines = [line for line in (root / "events.jsonl").read_text().splitlines()]
    (root / "events.jsonl").write_text("\n".join(line.replace('"pdb":{"current_healthy":4,"desired_healthy":4,'
                                                              '"disruptions_allowed":0,"expected_pods":4}',
                                                              '"pdb":{}') for line in lines) + "\n")
    f = analyse(root).findings[0]
    assert f["rule"] == "pdb-blocks-drain" and "None" not in f["cause"] and "allowed no disruption" in f["cause"]
