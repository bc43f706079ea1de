"""The report files: what a reader (and a CI system) needs is there, and
nothing is loaded from the network."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from harness.analysis.verdict import THRESHOLDS
from harness.report import write_report
from harness.report.compare import write_compare
from harness.report.render import CHART_FILES
from tests.analysis.builders import RunBuilder, rollout

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    root = tmp_path_factory.mktemp("reports")
    out = {}
    for m in ("best-practice", "no-prestop"):
        d = rollout(root / m, m)
        out[m] = (d, write_report(d))
    return out


def test_every_file_is_written(reports):
    d, summary = reports["no-prestop"]
    for name in ("summary.json", "index.html", "junit.xml", *CHART_FILES.values()):
        assert (d / name).is_file(), name
    for name in CHART_FILES.values():
        assert (d / name).read_bytes().startswith(PNG_MAGIC)
    on_disk = json.loads((d / "summary.json").read_text())
    assert on_disk["verdict"] == summary["verdict"]


def test_summary_has_the_engine_keys_and_the_analysis(reports):
    _, s = reports["no-prestop"]
    for key in ("total", "failed", "outcomes", "achieved_rate", "dropped"):
        assert key in s
    assert set(s["send_lag_ms"]) == {"p50", "p99", "max"}
    assert set(s["latency_ms"]) == {"p50", "p90", "p99", "max"}
    assert set(s["phases"]) >= {"baseline", "disruption", "settle"}
    assert s["disruption_seconds"] > 0 and s["findings"] and s["chains"]
    assert s["attribution"]["accuracy"]["accuracy"] == 1.0
    assert s["verdict"]["status"] == "fail" and s["verdict"]["exit_code"] == 1
    assert s["gate"]["limits"]["maxFailedRequests"] == 0


def test_html_opens_with_the_verdict_then_the_findings(reports):
    d, s = reports["no-prestop"]
    html = (d / "index.html").read_text()
    verdict_at = html.index('id="verdict"')
    findings_at = html.index('id="findings"')
    assert verdict_at < findings_at < html.index('id="timeline"') < html.index('id="swimlanes"') \
        < html.index('id="chains"') < html.index('id="failures"') < html.index('id="scenario"') \
        < html.index('id="environment"')
    assert ">FAIL<" in html
    assert "No preStop hook" in html and "preStop sleep &gt;= 1.5 s" in html
    assert "failed requests in the rollout" in html and "disruption" in html and "p99 latency" in html
    assert html.count("data:image/png;base64,") == 3


def test_html_loads_nothing_from_the_network(reports):
    for d, _ in reports.values():
        html = (d / "index.html").read_text()
        refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"' >]+)""", html, flags=re.I)
        assert all(not r.lower().startswith(("http:", "https:", "//")) for r in refs), refs
        assert "<link" not in html.lower() and "@import" not in html and "url(" not in html
        assert "<script" not in html.lower()


def test_best_practice_page_says_no_finding(reports):
    d, s = reports["best-practice"]
    html = (d / "index.html").read_text()
    assert ">PASS<" in html and "No finding" in html


def test_junit_has_one_testcase_per_threshold(reports):
    d, s = reports["no-prestop"]
    root = ET.parse(d / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == [t[0] for t in THRESHOLDS]
    failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert set(failed) == {"maxFailedRequests"}
    msg = failed["maxFailedRequests"].get("message")
    assert f"failed_requests = {s['service_failed']}" in msg and "limit 0" in msg
    skipped = {c.get("name") for c in cases if c.find("skipped") is not None}
    assert "maxErrorRatio" in skipped  # no limit set in the scenario
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["verdict"] == "fail" and props["exit_code"] == "1"


def test_junit_of_a_passing_run_has_no_failure(reports):
    d, _ = reports["best-practice"]
    root = ET.parse(d / "junit.xml").getroot()
    assert root.find(".//failure") is None
    assert len(root.findall(".//testcase")) == len(THRESHOLDS)


def test_report_of_an_empty_run(tmp_path):
    b = RunBuilder(tmp_path / "run")
    b.phases(0, 1, 2, 3)
    s = write_report(b.write())
    assert s["verdict"]["status"] == "inconclusive"
    html = (tmp_path / "run" / "index.html").read_text()
    assert "INCONCLUSIVE" in html and "no requests were recorded" in html


def test_summary_has_one_writer_the_analysis(tmp_path):
    """A stale summary.json (say, from an older harness) is replaced, not merged:
    the engine's figures come from the manifest's generator section."""
    d = rollout(tmp_path / "run", "best-practice")
    (d / "summary.json").write_text(json.dumps({"asked_rate": 1, "engine_only": 7}))
    s = write_report(d)
    on_disk = json.loads((d / "summary.json").read_text())
    assert "engine_only" not in s and "engine_only" not in on_disk
    manifest = json.loads((d / "manifest.json").read_text())
    assert on_disk["asked_rate"] == manifest["generator"]["asked_rate"] == 200
    assert "generator" not in on_disk  # the engine's figures live in the manifest only


def test_compare_writes_one_page_and_one_png(tmp_path, reports):
    out = tmp_path / "cmp"
    result = write_compare([reports["best-practice"][0], reports["no-prestop"][0]], out)
    assert (out / "compare.png").read_bytes().startswith(PNG_MAGIC)
    html = (out / "compare.html").read_text()
    assert "best-practice" in html and "no-prestop" in html and "No preStop hook" in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?https?:""", html)
    rows = {r["scenario"]: r for r in result["rows"]}
    assert rows["best-practice"]["failed"] == 0 and rows["no-prestop"]["failed"] > 0
    assert rows["no-prestop"]["top_rule"] == "no-prestop"


def test_compare_takes_a_directory_of_runs_as_its_latest(tmp_path):
    older = rollout(tmp_path / "sc" / "20260101T000000-0001", "best-practice")
    newer = rollout(tmp_path / "sc" / "20260102T000000-0001", "no-prestop")
    result = write_compare([tmp_path / "sc"], tmp_path / "out")
    assert result["rows"][0]["run_dir"] == str(newer) != str(older)
