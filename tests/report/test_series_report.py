"""The series report: one JUnit case per rollout, the aggregate as
properties, and a page even when no rollout could see."""

import json
import xml.etree.ElementTree as ET

from harness.analysis.aggregate import aggregate
from harness.report.series import SERIES_FILE, series_junit, write_series_report


def meta(statuses):
    rows = [{"index": i + 1, "status": s, "failed_requests": 3 if s == "fail" else 0, "window_requests": 9000,
             "headline": f"{s.upper()}: x", "run_dir": None, "top_title": "No preStop hook" if s == "fail" else None,
             "disruption_seconds": None, "p99_ms": None} for i, s in enumerate(statuses)]
    agg = aggregate(rows)
    return {"kind": "series", "series_id": "s1", "platform": "local", "scenario": {"name": "no-prestop"},
            "rollouts": rows, "aggregate": agg, "verdict": agg["verdict"]}


def test_one_junit_case_per_rollout_with_the_aggregate_verdict():
    root = ET.fromstring(series_junit(meta(["pass", "fail", "inconclusive", "pass"])))
    suite = root.find("testsuite")
    assert suite.get("tests") == "4" and suite.get("failures") == "1" and suite.get("errors") == "1"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["rollout 01", "rollout 02", "rollout 03", "rollout 04"]
    assert cases[1].find("failure") is not None and "No preStop hook" in cases[1].find("failure").text
    assert cases[2].find("error") is not None and cases[0].find("failure") is None
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["verdict"] == "flaky" and props["failed_rollouts"] == "1/3"


def test_the_page_renders_with_and_without_figures(tmp_path):
    for statuses in (["pass", "fail"], ["inconclusive", "inconclusive"]):
        m = meta(statuses)
        (tmp_path / SERIES_FILE).write_text(json.dumps(m))
        write_series_report(tmp_path, m)
        html = (tmp_path / "index.html").read_text()
        assert m["verdict"]["headline"].split(":")[0] in html
        assert ("Clopper" in html) == ("fail" in statuses)
