"""`rollout-harness validate` prints the risks `check` computes for the
scenario's workload: same ids, same wording, lines in the scenario file."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.commands import check, validate

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
MANIFEST = ROOT / "examples" / "manifests" / "k8s" / "sample-app.yaml"


def _validate(*files, overrides=(), manifests=()):
    return validate.run(argparse.Namespace(files=[str(f) for f in files], overrides=list(overrides),
                                           manifests=list(manifests), print_=False))


def test_validate_prints_the_risks_at_their_scenario_line(capsys):
    path = SCENARIOS / "drain-pdb-blocks.yaml"
    code = _validate(path)
    out = capsys.readouterr().out
    line = next(i + 1 for i, t in enumerate(path.read_text().splitlines()) if t.strip() == "minAvailable: 6")
    assert code == 0
    assert f"{path}:{line}: MEDIUM pdb-blocks-drain: PodDisruptionBudget allows no disruption" in out
    assert "fix: maxUnavailable: 1 (or minAvailable: 5)" in out


def test_a_risk_does_not_make_validate_fail(capsys):
    assert _validate(SCENARIOS / "no-prestop.yaml") == 0
    assert "HIGH no-prestop" in capsys.readouterr().out


def test_validate_and_check_print_the_same_risk_for_the_same_manifest(tmp_path, capsys):
    bad = tmp_path / "m.yaml"
    bad.write_text(MANIFEST.read_text().replace("terminationGracePeriodSeconds: 20",
                                                "terminationGracePeriodSeconds: 4"))
    assert check.run(argparse.Namespace(files=[str(bad)], format="text", deployment=None, container=None)) == 1
    checked = [line for line in capsys.readouterr().out.splitlines() if line.startswith(str(bad))
               or line.startswith("  ")]
    assert _validate(ROOT / "examples" / "manifests" / "scenario.yaml", manifests=[str(bad)]) == 0
    validated = capsys.readouterr().out.splitlines()
    risk = [line[2:] for line in validated if line.startswith(f"  {bad}")
            or line.startswith("    ")]
    assert risk and risk == checked[:len(risk)]
    assert "short-grace" in risk[0]


def test_the_best_practice_drain_has_nothing_to_say(capsys):
    assert _validate(SCENARIOS / "drain-best-practice.yaml") == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and ": ok (" in out
