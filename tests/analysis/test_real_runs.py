"""The analysis on real rollouts of the local platform (real replica
processes, real traffic): each shipped mistake's top finding names it,
best-practice yields none, attribution agrees with the platform's ground
truth (route_pod) on >= 99% of the failures it pins on one pod (the rest are
reported ambiguous, with the real pod among the candidates: never a guess),
and the ground truth contradicts no finding. A real server not written here
(uvicorn serving a minimal ASGI app, no preStop) runs too: its finding is
the missing preStop, and no readiness finding.

Each scenario runs once per test session (shorter baseline/settle than
shipped; the ``real_rollout`` fixture of tests/conftest.py, shared with
tests/test_runner.py) through the CLI, as a user runs it; an inconclusive
run is retried once, then the test fails with the reason. The assertions
are about findings and attribution, never about timings. Marked slow.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.conftest import REAL_RUN_SETS, ROOT, RealRun

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
}

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", list(EXPECTED), ids=list(EXPECTED))
def test_top_finding_names_the_mistake(real_rollout, name):
    run = real_rollout(name)
    run.require_conclusive()
    a = run.analysis
    s = a.summary
    rules = [f["rule"] for f in a.findings]
    if EXPECTED[name] is None:
        assert rules == [], [f["title"] for f in a.findings]
        assert s["service_failed"] == 0
    else:
        assert rules and rules[0] == EXPECTED[name], rules


@pytest.fixture(scope="module")
def uvicorn_run(tmp_path_factory) -> RealRun:
    from harness.analysis import analyse

    root = tmp_path_factory.mktemp("uvicorn")
    path = root / "uvicorn-no-prestop.yaml"
    path.write_text(yaml.safe_dump(UVICORN_NO_PRESTOP))
    for attempt in (1, 2):
        out = root / f"run-{attempt}"
        args = [sys.executable, "-m", "harness", "run", str(path), "--out", str(out), "--no-report", "-q"]
        for s in REAL_RUN_SETS:
            args += ["--set", s]
        proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert (out / "manifest.json").exists(), proc.stderr[-3000:]
        run = RealRun("uvicorn-no-prestop", out, proc, analyse(out), attempt)
        if run.inconclusive_reason is None:
            break
    return run


def _run(name, real_rollout, uvicorn_run) -> RealRun:
    return uvicorn_run if name == "uvicorn-no-prestop" else real_rollout(name)


WITH_FAILURES = [n for n in EXPECTED if EXPECTED[n]] + ["uvicorn-no-prestop"]


@pytest.mark.parametrize("name", WITH_FAILURES, ids=WITH_FAILURES)
def test_attribution_matches_the_ground_truth(real_rollout, uvicorn_run, name):
    run = _run(name, real_rollout, uvicorn_run)
    run.require_conclusive()
    a = run.analysis
    acc = a.summary["attribution"]["accuracy"]
    assert acc is not None, f"{name}: no failure carried the platform's ground truth " \
                            f"(failures: {a.summary['service_failed']}); run dir {run.out}"
    assert acc["accuracy"] is not None and acc["accuracy"] >= MIN_ACCURACY, (acc, str(run.out))
    # ambiguous failures name the real pod among their candidates
    assert acc["ambiguous_real_pod_in_candidates"] == acc["ambiguous"], acc


@pytest.mark.parametrize("name", WITH_FAILURES, ids=WITH_FAILURES)
def test_the_ground_truth_contradicts_no_finding(real_rollout, uvicorn_run, name):
    run = _run(name, real_rollout, uvicorn_run)
    run.require_conclusive()
    a = run.analysis
    truth = a.summary["ground_truth"]
    assert truth is not None and truth["findings_contradicted"] == 0, [
        (f["rule"], f.get("ground_truth")) for f in a.findings]
    # a finding that explains <= 1% of the failures is not HIGH
    for f in a.findings:
        if f["failures"] and f["failures"] <= 0.01 * a.summary["service_failed"]:
            assert f["severity"] != "high", f["rule"]


def test_the_real_server_gets_the_missing_prestop_and_no_readiness_finding(uvicorn_run):
    uvicorn_run.require_conclusive()
    rules = [f["rule"] for f in uvicorn_run.analysis.findings]
    assert rules and rules[0] == "no-prestop", rules
    assert not {"premature-readiness", "no-readiness-probe"} & set(rules), rules
