"""`rollout-harness check` as users call it: exit codes, the four formats,
stdin, and bad manifests refused with exit 2 and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.spec.checks import CHECKS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "manifests"
MANIFEST = EXAMPLE / "k8s" / "sample-app.yaml"
PRESTOP = "          lifecycle:\n            preStop:\n              sleep:\n                seconds: 3\n"


@pytest.fixture
def no_prestop(tmp_path) -> Path:
    path = tmp_path / "no-prestop.yaml"
    text = MANIFEST.read_text()
    assert PRESTOP in text
    path.write_text(text.replace(PRESTOP, ""))
    return path


def test_the_seeds_manifest_has_no_high_risk(capsys):
    assert main(["check", str(MANIFEST)]) == 0
    out = capsys.readouterr().out
    assert "no risk found in Deployment api" in out
    assert f"rollout-harness run examples/manifests/scenario.yaml --manifests {MANIFEST}" in out


def test_without_prestop_the_risk_is_high_at_its_line(capsys, no_prestop):
    assert main(["check", str(no_prestop)]) == 1
    out = capsys.readouterr().out
    line = no_prestop.read_text().splitlines().index("        - name: app") + 1
    assert out.startswith(f"{no_prestop}:{line}: HIGH no-prestop: No preStop hook")
    assert "what goes wrong:" in out and "fix: Add lifecycle.preStop" in out
    assert out.rstrip().endswith("rollout-harness run scenarios/no-prestop.yaml")


def test_json_junit_and_sarif_carry_the_same_risk(capsys, no_prestop):
    line = no_prestop.read_text().splitlines().index("        - name: app") + 1
    assert main(["check", str(no_prestop), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["highest"] == "high" and [(r["check"], r["line"]) for r in doc["risks"]] == [("no-prestop", line)]
    assert doc["risks"][0]["diagnosis_rule"] == "no-prestop" and doc["confirm"]

    assert main(["check", str(no_prestop), "--format", "junit"]) == 1
    suite = ET.fromstring(capsys.readouterr().out)
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["api: no-prestop"] and suite.get("failures") == "1"

    assert main(["check", str(no_prestop), "--format", "sarif"]) == 1
    sarif = json.loads(capsys.readouterr().out)
    assert sarif["version"] == "2.1.0"
    [result] = sarif["runs"][0]["results"]
    assert result["ruleId"] == "no-prestop" and result["level"] == "error"
    loc = result["locations"][0]["physicalLocation"]
    assert loc == {"artifactLocation": {"uri": str(no_prestop)}, "region": {"startLine": line}}
    rule_ids = [r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]]
    assert rule_ids[result["ruleIndex"]] == "no-prestop"


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_rendered_helm_output_on_stdin():
    rendered = (EXAMPLE / "helm-rendered.yaml").read_text()
    proc = _cli("check", "-", stdin=rendered)
    assert proc.returncode == 0, proc.stderr
    assert "no risk found in Deployment demo-sample-app" in proc.stdout
    proc = _cli("validate", "examples/manifests/scenario.yaml", "--manifests", "-", stdin=rendered)
    assert proc.returncode == 0, proc.stderr
    assert "3 replicas" in proc.stdout


@pytest.mark.parametrize("text, message", [
    ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: many\n"
     "  template:\n    spec:\n      containers: [{name: a, image: a}]\n",
     "<stdin>:6 (document 1: Deployment web): spec.replicas: Input should be a valid integer"),
    ("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n---\nkind: Deployment\nmetadata: {name: x}\n",
     "<stdin>:6 (document 2: Deployment x): apiVersion: missing"),
    ("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n", "no Deployment to check (found Service/web)"),
], ids=["bad-field", "no-apiversion", "no-deployment"])
def test_a_bad_manifest_exits_2_naming_file_document_and_field(text, message):
    proc = _cli("check", "-", stdin=text)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_bad_manifest_in_a_run_exits_2_before_any_run_dir(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(MANIFEST.read_text().replace("maxSurge: 1", "maxSurge: lots"))
    out = tmp_path / "run"
    proc = _cli("run", "examples/manifests/scenario.yaml", "--manifests", str(bad), "--out", str(out), "-q")
    assert proc.returncode == 2, proc.stderr
    line = bad.read_text().splitlines().index("      maxSurge: lots") + 1
    assert f"{bad}:{line} (document 1: Deployment api): spec.strategy.rollingUpdate.maxSurge" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_check_answers_without_loading_the_analysis_stack():
    """`check` is meant to answer at once: it never loads pandas or matplotlib
    (several seconds of import on a busy machine)."""
    code = ("import sys; from harness.cli import main; rc = main(['check', %r]); "
            "print(rc, sorted(m for m in ('pandas', 'matplotlib', 'numpy') if m in sys.modules))") % str(MANIFEST)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stdout + proc.stderr


def test_every_deployment_is_checked_or_the_one_named(tmp_path, capsys):
    two = tmp_path / "two.yaml"
    second = MANIFEST.read_text().split("---\n")[0].replace("name: api\n  labels", "name: web\n  labels", 1)
    second = second.replace("replicas: 4", "replicas: 1")
    two.write_text(MANIFEST.read_text() + "---\n" + second)
    assert main(["check", str(two), "--format", "junit"]) == 0  # one replica that surges first: MEDIUM
    suite = ET.fromstring(capsys.readouterr().out)
    names = [c.get("name") for c in suite.iter("testcase")]
    assert len(names) == 2 * len(CHECKS) and "web: single-replica" in names
    assert main(["check", str(two), "--deployment", "api", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["deployments"] == ["api"]
    assert main(["check", str(two), "--deployment", "shop"]) == 2
    assert "no Deployment named 'shop'" in capsys.readouterr().err
