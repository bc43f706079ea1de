"""The analysis on real rollouts of the local platform (real replica
processes, real traffic): each shipped mistake's top finding names it,
best-practice yields none, attribution agrees with the platform's ground
truth (route_pod) on >= 99% of the failures it pins on one pod (the rest
are reported ambiguous, never guessed), and the ground truth contradicts
no finding. A real server not written here (uvicorn, a minimal ASGI app,
no preStop) runs too: its only finding is the missing preStop.

Each scenario runs once (shorter baseline/settle than shipped) through the
CLI, as a user runs it; the assertions are about findings and attribution,
never about timings. Several minutes in all: marked slow.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.analysis import analyse

ROOT = Path(__file__).resolve().parents[2]
SHORTER = ["disruption.baselineSeconds=2", "disruption.settleSeconds=2"]
MIN_ACCURACY = 0.99
#: a third-party server: uvicorn (a project dependency) serving a minimal ASGI app, no preStop
UVICORN_NO_PRESTOP = {
    "name": "uvicorn-no-prestop",
    "description": ("uvicorn, minimal ASGI app, no preStop. uvicorn on SIGTERM closes its listener, finishes "
                    "the requests in flight and closes idle keep-alive connections "
                    "(https://www.uvicorn.org/deployment/ 'graceful shutdown'). Expected: refused on new "
                    "connections while the deleted pod is still in the endpoints (no-prestop); no readiness "
                    "finding (the httpGet probe only passes once uvicorn listens)."),
    "app": {"command": ["{python}", "-m", "uvicorn", "minimal_asgi:app", "--host", "127.0.0.1", "--port", "{port}",
                        "--app-dir", "tests/analysis/servers", "--log-level", "warning"],
            "containerPort": 8080, "stopSignal": "SIGTERM"},
    "deployment": {"name": "web", "replicas": 3, "terminationGracePeriodSeconds": 20,
                   "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                   "readinessProbe": {"httpGet": {"path": "/"}, "periodSeconds": 1}},
    "traffic": {"rate": 300, "connections": 16, "newConnectionRatio": 0.5, "connectTimeout": 1, "readTimeout": 5,
                "path": "/"},
    "disruption": {"type": "rollingUpdate", "change": {"env": {"V": "2"}}, "baselineSeconds": 2,
                   "settleSeconds": 2},
    "gate": {"maxFailedRequests": 0},
}

#: shipped scenario -> the rule its top finding must be (None: no finding at all)
EXPECTED = {
    "best-practice": None,
    "no-prestop": "no-prestop",
    "no-graceful-shutdown": "no-graceful-shutdown",
    "short-grace": "short-grace",
    "no-readiness-probe": "no-readiness-probe",
    "surge-zero": "capacity-dip",
    "abrupt-keepalive": "keepalive-cut",
    "uvicorn-no-prestop": "no-prestop",
}

pytestmark = pytest.mark.slow


def _scenario_file(name: str, out: Path) -> Path:
    if name == UVICORN_NO_PRESTOP["name"]:
        import yaml

        path = out.parent / f"{name}.yaml"
        path.write_text(yaml.safe_dump(UVICORN_NO_PRESTOP))
        return path
    scenario = ROOT / "scenarios" / f"{name}.yaml"
    if not scenario.exists():
        pytest.skip(f"{scenario} is not shipped")
    return scenario


def _run(name: str, out: Path) -> Path:
    scenario = _scenario_file(name, out)
    args = [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(out), "--no-report", "-q"]
    for s in SHORTER:
        args += ["--set", s]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert (out / "manifest.json").exists(), proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            a = analyse(_run(name, root / name))
            if a.summary["verdict"]["status"] == "inconclusive":  # a busy machine: once more
                a = analyse(_run(name, root / f"{name}-retry"))
            cache[name] = a
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(EXPECTED), ids=list(EXPECTED))
def test_top_finding_names_the_mistake(runs, name):
    a = runs(name)
    s = a.summary
    assert s["verdict"]["status"] != "inconclusive", f"{name}: inconclusive twice: {s['verdict']['reasons']}"
    rules = [f["rule"] for f in a.findings]
    if EXPECTED[name] is None:
        assert rules == [], [f["title"] for f in a.findings]
        assert s["service_failed"] == 0
    else:
        assert rules and rules[0] == EXPECTED[name], rules


@pytest.mark.parametrize("name", [n for n in EXPECTED if EXPECTED[n]], ids=[n for n in EXPECTED if EXPECTED[n]])
def test_attribution_matches_the_ground_truth(runs, name):
    a = runs(name)
    acc = a.summary["attribution"]["accuracy"]
    if acc is None:
        pytest.skip(f"{name}: no failure carried the platform's ground truth (failures: {a.summary['service_failed']})")
    assert acc["accuracy"] is not None and acc["accuracy"] >= MIN_ACCURACY, acc
    # ambiguous failures name the real pod among their candidates
    assert acc["ambiguous_real_pod_in_candidates"] == acc["ambiguous"], acc


@pytest.mark.parametrize("name", list(EXPECTED), ids=list(EXPECTED))
def test_the_ground_truth_contradicts_no_finding(runs, name):
    a = runs(name)
    truth = a.summary["ground_truth"]
    if a.summary["service_failed"] == 0:
        assert truth is None or truth["findings_contradicted"] == 0
        return
    assert truth is not None and truth["findings_contradicted"] == 0, [
        (f["rule"], f.get("ground_truth")) for f in a.findings]
    # and no finding that explains <= 1% of the failures is HIGH
    for f in a.findings:
        if f["failures"] and f["failures"] <= 0.01 * a.summary["service_failed"]:
            assert f["severity"] != "high", f["rule"]


def test_the_real_server_gets_no_readiness_finding(runs):
    a = runs("uvicorn-no-prestop")
    assert not {"premature-readiness", "no-readiness-probe"} & {f["rule"] for f in a.findings}, a.findings
