"""run --repeat on the local platform, for real: several rollouts of one
Deployment in one invocation, each its own run dir and verdict, one
aggregate verdict, a JUnit case per rollout, the history appended.

Expected before running (docs/proof.md, scenarios/best-practice.yaml):
best-practice drops no request, so every rollout passes and the series is
0/N with the Clopper–Pearson interval [0, 1-(0.025)^(1/N)]. A run that
comes out inconclusive on a busy machine is retried once, then fails with
its reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.analysis import stats
from harness.model.events import read_events
from harness.model.scenario import load_scenario
from harness.report.history import history, key_of
from harness.report.series import history_path
from harness.series import run_series

ROOT = Path(__file__).resolve().parents[1]
SHORTER = ["disruption.baselineSeconds=2", "disruption.settleSeconds=2"]
#: what this file tests is the series, not the engine at 500 req/s: a lighter load keeps a busy
#: shared machine from turning the runs inconclusive on send lag
LIGHTER = SHORTER + ["traffic.rate=200"]


def _series(tmp_path: Path, name: str, n: int, tries: int = 2):
    sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml", LIGHTER)
    for attempt in range(1, tries + 1):
        out = tmp_path / f"{name}-{attempt}"
        o = run_series(sc, platform="local", series_dir=out, repeat=n)
        if o.summary["verdict"]["status"] != "inconclusive":
            return sc, o
    pytest.fail(f"{name} x{n}: inconclusive twice: {o.summary['verdict']['headline']}; "
                + "; ".join(r["headline"] for r in o.summary["rollouts"]))


@pytest.mark.slow
def test_repeated_best_practice_rollouts_of_one_deployment(tmp_path):
    sc, o = _series(tmp_path, "best-practice", 2)
    s = o.summary
    assert s["verdict"]["status"] == "pass", s["verdict"]
    assert o.exit_code == 0
    agg = s["aggregate"]
    assert agg["rollout_failure"]["k"] == 0 and agg["rollout_failure"]["n"] == 2
    assert agg["rollout_failure"]["interval"][1] == pytest.approx(stats.clopper_pearson(0, 2)[1], abs=1e-6)
    assert agg["requests"]["window_total"] > 0 and agg["requests"]["upper"] > 0

    dirs = [Path(r["run_dir"]) for r in s["rollouts"]]
    assert [d.name for d in dirs] == ["rollout-01", "rollout-02"]
    first_new, second_new = (
        {e["pod"] for e in read_events(d) if e["kind"] == "pod_created" and e["t_ns"] >= _phase(d, "disruption")}
        for d in dirs)
    # the second rollout is of the same Deployment: it starts from the first one's new pods ...
    carried = json.loads((dirs[1] / "manifest.json").read_text())["series"]["pods_carried_over"]
    assert sorted(carried) == sorted(first_new) and len(carried) == sc.deployment.replicas
    # ... and replaces every one of them
    assert len(second_new) == sc.deployment.replicas and not second_new & first_new
    for d in dirs:
        summary = json.loads((d / "summary.json").read_text())
        assert summary["verdict"]["status"] == "pass"
        # a passing rollout gets its summary; its page is rendered on demand (run --every-report, or report)
        assert not (d / "index.html").exists()

    cases = ET.parse(o.series_dir / "junit.xml").getroot().findall(".//testcase")
    assert [c.get("name") for c in cases] == ["rollout 01", "rollout 02"]
    assert (o.series_dir / "index.html").read_text().count("summary.json") >= 2
    rows = history(history_path(), key_of(sc.dump(), "local"), conclusive_only=False)
    mine = [r for r in rows if r["series_id"] == o.series_dir.name]  # a retried first attempt is in it too
    assert [r["run_dir"] for r in mine] == [str(d.resolve()) for d in dirs]
    assert [r["status"] for r in mine] == ["pass", "pass"]

    gate = subprocess.run([sys.executable, "-m", "harness", "gate", str(o.series_dir)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert gate.returncode == 0 and gate.stdout.startswith("PASS: 0/2"), gate.stdout + gate.stderr

    # against the history: the series' own rows never count as its baseline
    def gate_history(*extra):
        return subprocess.run([sys.executable, "-m", "harness", "gate", str(o.series_dir), "--baseline", "history",
                               *extra], capture_output=True, text=True, cwd=ROOT, timeout=120)

    g = gate_history("--min-history", "5")
    assert g.returncode == 3 and "history holds" in g.stdout, g.stdout + g.stderr
    from harness.report.history import record

    past = [{"run_dir": f"/past/{i}", "status": "pass", "failed_requests": 0, "window_requests": 9000}
            for i in range(5)]
    record(history_path(), sc.dump(), "local", past)
    g = gate_history()
    assert g.returncode == 0 and g.stdout.startswith("PASS"), g.stdout + g.stderr


def _phase(run_dir: Path, name: str) -> int:
    return json.loads((run_dir / "manifest.json").read_text())["phases_t_ns"][name]


@pytest.mark.parametrize("args,msg", [(["--repeat", "0"], "--repeat 0"), (["--lanes", "0", "--repeat", "2"], "--lanes 0")])
def test_bad_repeat_arguments_exit_2_and_create_nothing(tmp_path, args, msg):
    out = tmp_path / "series"
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(ROOT / "scenarios/best-practice.yaml"),
                           "--out", str(out), *args], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert msg in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


@pytest.mark.slow
def test_verify_fix_names_an_app_fix_and_does_not_apply_it(tmp_path):
    """no-graceful-shutdown's fix is in the app (handle SIGTERM): the run
    before fails, the fix is named, nothing is rerun, exit 1."""
    out = tmp_path / "vf"
    args = [sys.executable, "-m", "harness", "run", str(ROOT / "scenarios/no-graceful-shutdown.yaml"), "--verify-fix",
            "-q", "--out", str(out)] + [a for s in LIGHTER for a in ("--set", s)]
    for _ in range(2):
        proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600)
        rec = json.loads((out / "verify-fix.json").read_text())
        if rec["before"]["status"] != "inconclusive":
            break
        import shutil

        shutil.rmtree(out)
    assert rec["before"]["status"] == "fail", proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert rec["fix"]["rule"] == "no-graceful-shutdown" and rec["fix"]["applicable"] is False
    assert rec["result"].startswith("not applied: needs the app changed")
    assert "after" not in rec and not (out / "after").exists()


def test_switching_events_replay_the_pods_that_carry_over(tmp_path):
    from harness.series import SwitchingEvents

    ev = SwitchingEvents(tmp_path / "lane" / "events.jsonl")
    ev.switch(tmp_path / "r1" / "events.jsonl")
    ev.emit(1, "old", "pod_created")
    ev.emit(2, "new", "pod_created")
    ev.emit(3, "", "phase", phase="baseline")
    ev.emit(4, "new", "ready")
    ev.emit(5, "old", "pod_deleted")
    ev.switch(None)
    ev.emit(6, "new", "probe_failed")  # between rollouts: kept for the next one
    ev.switch(tmp_path / "r2" / "events.jsonl")
    ev.emit(7, "newer", "pod_created")
    ev.close()
    r1 = [(e["t_ns"], e["pod"], e["kind"]) for e in read_events(tmp_path / "r1")]
    r2 = [(e["t_ns"], e["pod"], e["kind"]) for e in read_events(tmp_path / "r2")]
    lane = read_events(tmp_path / "lane")
    assert r1 == [(1, "old", "pod_created"), (2, "new", "pod_created"), (3, "", "phase"), (4, "new", "ready"),
                  (5, "old", "pod_deleted")]
    # the pod that lives on brings its whole life; the deleted one and the old phase do not
    assert r2 == [(2, "new", "pod_created"), (4, "new", "ready"), (6, "new", "probe_failed"),
                  (7, "newer", "pod_created")]
    assert len(lane) == 7 and ev.alive_pods() == ["new", "newer"]
