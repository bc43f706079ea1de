"""``traffic.generators``: validated in the scenario, rejected where it
cannot run, with the file, the field and the fix named (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import BadInput, ScenarioError
from harness.model.generators import check_generators
from harness.model.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
BEST = ROOT / "scenarios" / "best-practice.yaml"


def test_the_field_loads_with_its_defaults():
    sc = load_scenario(BEST, ["traffic.generators.count=3"])
    g = sc.traffic.generators
    assert g.count == 3 and g.target == "service" and g.max_clock_uncertainty_ms == 25
    assert sc.dump()["traffic"]["generators"]["count"] == 3
    assert load_scenario(BEST).traffic.generators is None


@pytest.mark.parametrize("overrides,field", [
    (["traffic.generators.count=0"], "traffic.generators.count"),
    (["traffic.generators.count=2", "traffic.generators.target=pod"], "traffic.generators.target"),
    (["traffic.generators.count=2", "traffic.generators.replicas=2"], "traffic.generators.replicas"),
    (["traffic.generators.target=service"], "traffic.generators.count"),
    (["traffic.generators.count=2", "traffic.generators.maxClockUncertaintyMs=0"],
     "traffic.generators.maxClockUncertaintyMs"),
], ids=["count-0", "unknown-target", "unknown-field", "count-missing", "bound-0"])
def test_bad_fields_are_named(overrides, field):
    with pytest.raises(ScenarioError) as exc:
        load_scenario(BEST, overrides)
    assert field in str(exc.value) and str(BEST) in str(exc.value)


@pytest.mark.parametrize("overrides,platform,words", [
    (["traffic.generators.count=2"], "local", "need the kubernetes platform"),
    (["traffic.generators.count=2", "traffic.workers=2"], "kubernetes", "set traffic.workers: 1"),
    (["traffic.generators.count=2", "traffic.generators.target=ingress"], "kubernetes", "set traffic.via: ingress"),
    (["traffic.generators.count=2", "traffic.via=ingress"], "kubernetes", "set target: ingress"),
    (["traffic.generators.count=2", "traffic.generators.target=nodePort", "kubernetes.serviceType=ClusterIP"],
     "kubernetes", "serviceType"),
], ids=["local", "workers", "ingress-without-via", "via-without-ingress", "nodeport-without-nodeport"])
def test_combinations_that_cannot_run_are_bad_input(overrides, platform, words):
    sc = load_scenario(BEST, overrides)
    with pytest.raises(BadInput) as exc:
        check_generators(sc, platform)
    assert words in str(exc.value) and "traffic." in str(exc.value)


def test_the_local_platform_refuses_through_the_cli(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(BEST), "--platform", "local", "--quiet",
                           "--set", "traffic.generators.count=2", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "traffic.generators" in proc.stderr and "--platform kubernetes" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()
