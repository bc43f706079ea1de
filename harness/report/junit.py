"""junit.xml: one test case per gate threshold, so a CI system shows which
threshold failed and by how much (value vs limit) without opening the report.

The verdict itself (pass / fail / inconclusive and why) rides along as
test-suite properties; an inconclusive run's engine thresholds show as
failures, since the run could not see.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

JUNIT_FILE = "junit.xml"


def junit_xml(summary: dict[str, Any]) -> bytes:
    rows = summary["gate"]["thresholds"]
    verdict = summary["verdict"]
    name = f"rollout-harness gate: {summary['scenario']}"
    failures = sum(r["status"] == "fail" for r in rows)
    skipped = sum(r["status"] in ("skipped", "unknown") for r in rows)
    suites = ET.Element("testsuites", name="rollout-harness", tests=str(len(rows)), failures=str(failures))
    suite = ET.SubElement(suites, "testsuite", name=name, tests=str(len(rows)), failures=str(failures),
                          errors="0", skipped=str(skipped))
    props = ET.SubElement(suite, "properties")
    for key, value in (("verdict", verdict["status"]), ("exit_code", verdict["exit_code"]),
                       ("reasons", "; ".join(verdict.get("reasons", []))), ("run_dir", summary["run_dir"])):
        ET.SubElement(props, "property", name=key, value=str(value))
    for r in rows:
        case = ET.SubElement(suite, "testcase", name=r["name"], classname=f"rollout_harness.gate.{summary['scenario']}")
        if r["status"] == "fail":
            el = ET.SubElement(case, "failure", message=r["message"], type="threshold")
            el.text = f"{r['name']}: {r['value_key']} = {r['value']}, limit {r['limit']}"
        elif r["status"] == "skipped":
            ET.SubElement(case, "skipped", message="no limit set in the scenario's gate")
        elif r["status"] == "unknown":
            ET.SubElement(case, "skipped", message=f"no value: {r['message']}")
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(run_dir: str | Path, summary: dict[str, Any]) -> Path:
    path = Path(run_dir) / JUNIT_FILE
    path.write_bytes(junit_xml(summary))
    return path
