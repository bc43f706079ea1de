"""The analysis on real rollouts of the local platform (real replica
processes, real traffic): each shipped mistake's top finding names it,
best-practice yields none, and attribution agrees with the platform's
ground truth (route_pod) on >= 95% of the failures of every scenario.

Each scenario runs once per test session (shorter baseline/settle than
shipped; the ``real_rollout`` fixture of tests/conftest.py, shared with
tests/test_runner.py) through the CLI, as a user runs it; an inconclusive
run is retried once, then the test fails with the reason. The assertions
are about findings and attribution, never about timings. Marked slow.
"""

from __future__ import annotations

import pytest

MIN_ACCURACY = 0.95

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


@pytest.mark.parametrize("name", [n for n in EXPECTED if EXPECTED[n]], ids=[n for n in EXPECTED if EXPECTED[n]])
def test_attribution_matches_the_ground_truth(real_rollout, name):
    run = real_rollout(name)
    run.require_conclusive()
    a = run.analysis
    acc = a.summary["attribution"]["accuracy"]
    assert acc is not None, f"{name}: no failure carried the platform's ground truth " \
                            f"(failures: {a.summary['service_failed']}); run dir {run.out}"
    assert acc["accuracy"] >= MIN_ACCURACY, acc
