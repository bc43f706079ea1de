"""The analysis on real rollouts of the local platform (real replica
processes, real traffic): each shipped mistake's top finding names it,
best-practice yields none, and attribution agrees with the platform's
ground truth (route_pod) on >= 95% of the failures of every scenario.

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


def _run(name: str, out: Path) -> Path:
    scenario = ROOT / "scenarios" / f"{name}.yaml"
    if not scenario.exists():
        pytest.skip(f"{scenario} is not shipped")
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
            cache[name] = analyse(_run(name, root / name))
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(EXPECTED), ids=list(EXPECTED))
def test_top_finding_names_the_mistake(runs, name):
    a = runs(name)
    s = a.summary
    if s["verdict"]["status"] == "inconclusive":
        pytest.skip(f"{name}: the run could not see ({s['verdict']['reasons'][0]}); the machine was too busy")
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
    assert acc["accuracy"] >= MIN_ACCURACY, acc
