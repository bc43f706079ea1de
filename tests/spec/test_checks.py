"""The static face of the rules: each risk from the spec alone, at its line,
with the same rule ids as the diagnosis that shows it in a run."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from harness.analysis import drain_rules, rules
from harness.spec.checks import CHECKS, HIGH, LOW, MEDIUM, TYPICAL_DRAIN_S, check_workload
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
