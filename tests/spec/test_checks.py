"""The static face of the rules: each risk from the spec alone, at its line,
with the same rule ids as the diagnosis that shows it in a run."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

import ast

from harness.analysis import drain_rules, rules
from harness.model.scenario import load_scenario, scenario_from_dict
from harness.spec.checks import (CHECKS, HIGH, LOW, MEDIUM, RUN_ONLY, TYPICAL_DRAIN_S, check_scenario,
                                 check_workload)
from harness.model.k8syaml import parse_documents
from harness.model.workload import from_documents

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "examples" / "manifests" / "k8s" / "sample-app.yaml"
BASE = list(yaml.safe_load_all(MANIFEST.read_text()))


def risks_of(change=None, *, drop_pdb=False) -> dict[str, str]:
    docs = copy.deepcopy(BASE)
    dep = docs[0]
    if change:
        change(dep["spec"], dep["spec"]["template"]["spec"], dep["spec"]["template"]["spec"]["containers"][0])
    if drop_pdb:
        docs = [d for d in docs if d["kind"] != "PodDisruptionBudget"]
    if len(docs) == 3 and docs[2]["kind"] == "PodDisruptionBudget" and change and hasattr(change, "pdb"):
        docs[2]["spec"] = change.pdb
    wl = from_documents(parse_documents(yaml.safe_dump_all(docs), "m.yaml"))
    return {r.check: r.severity for r in check_workload(wl)}


def _pdb(spec):
    def change(s, p, c):
        pass
    change.pdb = spec
    return change


CASES = {
    "the seed's manifest": (None, {}),
    "no preStop": (lambda s, p, c: c.pop("lifecycle"), {"no-prestop": HIGH}),
    "grace shorter than preStop + drain": (lambda s, p, c: p.update(terminationGracePeriodSeconds=6),
                                           {"short-grace": HIGH}),
    "default grace is enough": (lambda s, p, c: p.pop("terminationGracePeriodSeconds"), {}),
    "no readiness probe": (lambda s, p, c: c.pop("readinessProbe"), {"no-readiness-probe": HIGH}),
    "readiness on the liveness endpoint": (lambda s, p, c: c["livenessProbe"]["httpGet"].update(path="/ready"),
                                           {"readiness-is-liveness": MEDIUM}),
    "maxUnavailable with 3 replicas": (lambda s, p, c: (s.update(replicas=3), s["strategy"]["rollingUpdate"]
                                                        .update(maxUnavailable=1)), {"max-unavailable": MEDIUM}),
    "maxUnavailable with 8 replicas is a choice": (lambda s, p, c: (s.update(replicas=8), s["strategy"]
                                                                    ["rollingUpdate"].update(maxUnavailable=1)), {}),
    "maxSurge 0": (lambda s, p, c: s["strategy"]["rollingUpdate"].update(maxSurge=0, maxUnavailable=1),
                   {"max-surge-zero": MEDIUM}),
    "maxSurge 10% of 4 rounds up to 1": (lambda s, p, c: s["strategy"]["rollingUpdate"].update(maxSurge="10%"), {}),
    "Recreate": (lambda s, p, c: s.update(strategy={"type": "Recreate"}), {"recreate": HIGH}),
    "one replica that surges": (lambda s, p, c: s.update(replicas=1), {"single-replica": MEDIUM}),
    "one replica taken down by the rollout": (
        lambda s, p, c: (s.update(replicas=1), s["strategy"]["rollingUpdate"].update(maxSurge=0, maxUnavailable=1)),
        {"single-replica": HIGH, "max-surge-zero": MEDIUM, "max-unavailable": MEDIUM}),
    "PDB minAvailable 100%": (_pdb({"minAvailable": "100%", "selector": BASE[2]["spec"]["selector"]}),
                              {"pdb-blocks-drain": MEDIUM}),
    "PDB maxUnavailable 0": (_pdb({"maxUnavailable": 0, "selector": BASE[2]["spec"]["selector"]}),
                             {"pdb-blocks-drain": MEDIUM}),
    "liveness delay without a startup probe": (lambda s, p, c: c["livenessProbe"].update(initialDelaySeconds=60),
                                               {"liveness-delay-without-startup": LOW}),
    "liveness delay behind a startup probe": (
        lambda s, p, c: (c["livenessProbe"].update(initialDelaySeconds=60),
                         c.update(startupProbe={"httpGet": {"path": "/ready", "port": "http"}})), {}),
}


@pytest.mark.parametrize("name", CASES, ids=list(CASES))
def test_each_risk_from_the_spec(name):
    change, expected = CASES[name]
    assert risks_of(change) == expected


def test_no_pdb_is_a_low_risk():
    assert risks_of(drop_pdb=True) == {"no-pdb": LOW}


def test_the_prestop_risk_points_at_the_container_line():
    text = MANIFEST.read_text().replace("          lifecycle:\n            preStop:\n              sleep:\n"
                                        "                seconds: 3\n", "")
    wl = from_documents(parse_documents(text, "copy.yaml"))
    [risk] = check_workload(wl)
    line = text.splitlines()[risk.line - 1]
    assert risk.check == "no-prestop" and line.strip() == "- name: app"
    assert risk.source == "copy.yaml" and "Deployment api" in risk.document


def test_the_grace_risk_points_at_the_grace_period_line_and_says_the_sum():
    text = MANIFEST.read_text().replace("terminationGracePeriodSeconds: 20", "terminationGracePeriodSeconds: 4")
    [risk] = check_workload(from_documents(parse_documents(text, "m.yaml")))
    assert "terminationGracePeriodSeconds: 4" in text.splitlines()[risk.line - 1]
    assert f">= {3 + TYPICAL_DRAIN_S:g} s" in risk.fix


def test_prestop_as_exec_sleep_counts():
    text = MANIFEST.read_text().replace("sleep:\n                seconds: 3",
                                        'exec:\n                command: ["sh", "-c", "sleep 18"]')
    assert {r.check for r in check_workload(from_documents(parse_documents(text, "m.yaml")))} == {"short-grace"}


def test_every_diagnosis_rule_named_by_a_check_exists():
    """The two faces share their ids: a check names the diagnosis rule that
    shows the same risk as evidence in a run."""
    source = Path(rules.__file__).read_text() + Path(drain_rules.__file__).read_text()
    for check in CHECKS.values():
        if check.diagnosis:
            assert f'"{check.diagnosis}"' in source, check.id
        if check.scenario:
            assert (ROOT / check.scenario).is_file(), check.scenario


def _finding_ids(module) -> set[str]:
    """The ids a rule module's ``finding(...)`` calls name as literals."""
    tree = ast.parse(Path(module.__file__).read_text())
    return {n.args[0].value for n in ast.walk(tree)
            if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "finding"
            and n.args and isinstance(n.args[0], ast.Constant)}


def test_every_drain_rule_has_its_static_face_or_says_why_not():
    """Each drain diagnosis rule is named by a check (same id), or listed in
    RUN_ONLY with the reason it has no static face; nothing else."""
    ids = _finding_ids(drain_rules)
    assert ids == {"single-replica", "all-on-one-node", "no-pdb", "pdb-blocks-drain", "rollout-below-pdb"}
    by_checks = {c.diagnosis for c in CHECKS.values()}
    for rule in ids:
        assert (rule in by_checks) != (rule in RUN_ONLY), rule
        if rule in by_checks:
            assert rule in CHECKS, f"{rule}: the check that shows it should carry the rule's own id"
    assert set(RUN_ONLY) <= ids | _finding_ids(rules), "RUN_ONLY names a rule that does not exist"
    assert not hasattr(drain_rules, "drain_risks"), "one static face: harness.spec.checks"


SCENARIOS = ROOT / "scenarios"
DRAIN_IDS = {"single-replica", "no-pdb", "pdb-blocks-drain"}


def scenario_risks(name, *sets) -> dict[str, str]:
    return {r.check: r.severity for r in check_scenario(load_scenario(SCENARIOS / f"{name}.yaml", list(sets)))}


@pytest.mark.parametrize("name, expected", [
    ("drain-best-practice", {}),
    ("drain-no-pdb", {"no-pdb": LOW}),
    ("drain-pdb-blocks", {"pdb-blocks-drain": MEDIUM}),
    ("drain-single-replica", {"single-replica": MEDIUM}),
    ("best-practice", {"no-pdb": LOW}),
    ("no-prestop", {"no-prestop": HIGH, "no-pdb": LOW}),
])
def test_each_shipped_scenario_shows_its_mistake(name, expected):
    """A scenario's own deployment: fields go through the same checks as a
    manifest; each drain-* scenario is the best practice plus one mistake."""
    assert scenario_risks(name) == expected


def test_scenario_overrides_and_spread_that_strands_replacements():
    assert scenario_risks("drain-best-practice", "deployment.podDisruptionBudget.maxUnavailable=0") == {
        "pdb-blocks-drain": MEDIUM}
    spread = "deployment.topologySpreadConstraints=[{whenUnsatisfiable: DoNotSchedule}]"
    assert scenario_risks("drain-best-practice", spread) == {"spread-blocks-drain": MEDIUM}
    honor = "deployment.topologySpreadConstraints=[{whenUnsatisfiable: DoNotSchedule, nodeTaintsPolicy: Honor}]"
    assert scenario_risks("drain-best-practice", honor) == {}


def test_a_scenario_risk_points_at_its_line_in_the_scenario_file():
    path = SCENARIOS / "drain-pdb-blocks.yaml"
    [risk] = check_scenario(load_scenario(path))
    assert risk.source == str(path) and risk.field == "deployment.podDisruptionBudget.minAvailable"
    assert path.read_text().splitlines()[risk.line - 1].strip() == "minAvailable: 6"
    assert "maxUnavailable: 1" in risk.fix


def test_snake_case_scenario_keys_have_lines_too(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("name: s\ndeployment:\n  replicas: 2\n  termination_grace_period_seconds: 1\n")
    risks = {r.check: r for r in check_scenario(load_scenario(f))}
    assert risks["short-grace"].line == 4 and risks["short-grace"].field == "deployment.terminationGracePeriodSeconds"


def test_a_scenario_without_a_file_is_checked_too():
    risks = check_scenario(scenario_from_dict({"name": "t", "deployment": {"replicas": 1}}))
    assert "single-replica" in {r.check for r in risks}


def test_a_scenario_from_manifests_points_at_the_manifest():
    sc = load_scenario(ROOT / "examples" / "manifests" / "scenario.yaml",
                       manifests=[str(MANIFEST)])
    assert check_scenario(sc) == []
    text = MANIFEST.read_text().replace("terminationGracePeriodSeconds: 20", "terminationGracePeriodSeconds: 4")
    [risk] = check_scenario(load_scenario(ROOT / "examples" / "manifests" / "scenario.yaml", manifests=["-"],
                                          stdin_text=text))
    assert risk.check == "short-grace" and risk.source == "<stdin>"
    assert "terminationGracePeriodSeconds: 4" in text.splitlines()[risk.line - 1]
