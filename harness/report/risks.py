"""The risks `rollout-harness check` found, as a reader or a tool wants
them: text for a terminal, JSON, JUnit XML for CI test tabs, and SARIF 2.1.0
for code-scanning UIs (each risk annotated on its manifest line)."""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from harness import __version__
from harness.spec.checks import CHECKS, HIGH, LOW, MEDIUM, Risk

SARIF_LEVEL = {HIGH: "error", MEDIUM: "warning", LOW: "note"}
CONFIRM_SCENARIO = "examples/manifests/scenario.yaml"


def confirm_command(files: list[str], deployment: str) -> str:
    """The run that would show the risk happening, with these manifests."""
    manifests = " ".join(f"--manifests {f}" for f in files)
    return (f"rollout-harness run {CONFIRM_SCENARIO} {manifests} --set workload.deployment={deployment} "
            "[--platform kubernetes]")


def confirmations(risks: list[Risk], files: list[str]) -> list[str]:
    lines = []
    for dep in sorted({r.deployment for r in risks}):
        lines.append(confirm_command(files, dep))
    shipped = sorted({CHECKS[r.check].scenario for r in risks if CHECKS[r.check].scenario})
    if shipped:
        lines.append("the same risk, reproduced with the sample app: "
                     + ", ".join(f"rollout-harness run {s}" for s in shipped))
    return lines


def risk_lines(r: Risk) -> list[str]:
    """One risk for a terminal, as `check` and `validate` both print it."""
    return [f"{r.source}:{r.line}: {r.severity.upper()} {r.check}: {r.title} (Deployment {r.deployment}, {r.field})",
            f"  what goes wrong: {r.what}",
            f"  fix: {r.fix}"]


def as_text(risks: list[Risk], files: list[str], deployments: list[str]) -> str:
    out: list[str] = []
    for r in risks:
        out.extend(risk_lines(r))
    counts = {s: sum(r.severity == s for r in risks) for s in (HIGH, MEDIUM, LOW)}
    checked = ", ".join(deployments)
    if risks:
        out.append(f"{len(risks)} risk(s) in Deployment {checked}: "
                   + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
        out.append("Confirm under load (no cluster needed on the local platform):")
        out.extend(f"  {c}" for c in confirmations(risks, files))
    else:
        out.append(f"no risk found in Deployment {checked} ({len(CHECKS)} checks)")
        out.append("Confirm under load: " + confirm_command(files, deployments[0] if deployments else "NAME"))
    return "\n".join(out) + "\n"


def as_json(risks: list[Risk], files: list[str], deployments: list[str]) -> str:
    doc = {"files": files, "deployments": deployments, "risks": [r.as_dict() for r in risks],
           "highest": next((s for s in (HIGH, MEDIUM, LOW) if any(r.severity == s for r in risks)), None),
           "confirm": confirmations(risks, files) if risks else
           [confirm_command(files, d) for d in deployments]}
    return json.dumps(doc, indent=2) + "\n"


def as_junit(risks: list[Risk], files: list[str], deployments: list[str]) -> str:
    """One test case per check and Deployment; a risk is a failure."""
    cases: list[str] = []
    failures = 0
    for dep in deployments:
        for check in CHECKS.values():
            found = [r for r in risks if r.deployment == dep and r.check == check.id]
            name = quoteattr(f"{dep}: {check.id}")
            if not found:
                cases.append(f'  <testcase classname="rollout-harness.check" name={name}/>')
                continue
            failures += 1
            body = "\n".join(f"{r.source}:{r.line} {r.field}\n{r.what}\nfix: {r.fix}" for r in found)
            cases.append(f'  <testcase classname="rollout-harness.check" name={name}>\n'
                         f'    <failure type={quoteattr(found[0].severity)} message={quoteattr(check.title)}>'
                         f"{escape(body)}</failure>\n  </testcase>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<testsuite name="rollout-harness check" tests="{len(cases)}" failures="{failures}" errors="0">\n'
            + "\n".join(cases) + "\n</testsuite>\n")


def as_sarif(risks: list[Risk], files: list[str], deployments: list[str]) -> str:
    rules = [{"id": c.id, "name": c.id, "shortDescription": {"text": c.title},
              "help": {"text": c.title + (f"; reproduced by {c.scenario}" if c.scenario else "")}}
             for c in CHECKS.values()]
    index = {c.id: i for i, c in enumerate(CHECKS.values())}
    results: list[dict[str, Any]] = []
    for r in risks:
        results.append({
            "ruleId": r.check, "ruleIndex": index[r.check], "level": SARIF_LEVEL[r.severity],
            "message": {"text": f"{r.title} (Deployment {r.deployment}): {r.what} Fix: {r.fix}"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": r.source},
                                                "region": {"startLine": max(r.line, 1)}}}],
            "properties": {"severity": r.severity, "field": r.field, "document": r.document},
        })
    doc = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
           "runs": [{"tool": {"driver": {"name": "rollout-harness", "version": __version__, "rules": rules}},
                     "results": results}]}
    return json.dumps(doc, indent=2) + "\n"


FORMATS = {"text": as_text, "json": as_json, "junit": as_junit, "sarif": as_sarif}
