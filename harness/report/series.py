"""The report of a repeated run (``run --repeat N``): the aggregate verdict
into series.json, index.html with the history's trend chart, and a
junit.xml with one test case per rollout. Reads only the rollouts' run dirs
(their summary.json, written by each rollout's own report).

    summary = series_report("reports/best-practice/<series-id>")  # re-render any past series
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.analysis.aggregate import aggregate, headline
from harness.errors import BadInput
from harness.model.rundir import SUMMARY_FILE, write_json_atomic

SERIES_FILE = "series.json"
HTML_FILE = "index.html"
JUNIT_FILE = "junit.xml"
TREND_PNG = "trend.png"


def history_path() -> Path:
    from harness.report.history import DEFAULT_HISTORY

    return Path(os.environ.get("ROLLOUT_HARNESS_HISTORY", str(DEFAULT_HISTORY)))


def _read_summary(run_dir: Path | None) -> dict[str, Any] | None:
    if run_dir is None:
        return None
    try:
        data = json.loads((run_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("verdict") else None


def rollout_headlines(rollouts) -> list[dict[str, Any]]:
    """One headline per rollout; a rollout without a report (not run, deploy
    failed, report crashed) is inconclusive with its reason."""
    out = []
    for r in rollouts:
        s = _read_summary(r.run_dir) if r.run_dir is not None and r.run_dir.exists() else None
        if s is not None:
            h = headline(s)
        else:
            why = r.error or f"no report ({r.status})"
            h = {"run_dir": str(r.run_dir) if r.run_dir is not None and r.run_dir.exists() else None,
                 "status": "inconclusive", "headline": f"INCONCLUSIVE: {why}", "failed_requests": 0,
                 "window_requests": 0, "window_seconds": None, "disruption_seconds": None, "p99_ms": None,
                 "achieved_rate": None, "top_finding": None, "top_title": None}
        h["index"] = r.index
        out.append(h)
    return out


def finish_series(series_dir: Path, scenario, platform: str, rollouts, *, status: str, report: bool) -> dict[str, Any]:
    """After the last rollout: aggregate, record the history, write the report."""
    rows = rollout_headlines(rollouts)
    gate = scenario.gate
    agg = aggregate(rows, max_rollout_failure_probability=gate.max_rollout_failure_probability,
                    confidence=gate.rollout_confidence)
    meta = json.loads((series_dir / SERIES_FILE).read_text(encoding="utf-8"))
    meta.update(status=status, finished_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                rollouts=rows, aggregate=agg, verdict=agg["verdict"])
    if report and status == "complete":
        from harness.report.history import record

        db = history_path()
        record(db, meta["scenario"], platform, rows, series_id=series_dir.name)
        meta["history"] = str(db)
    write_json_atomic(series_dir / SERIES_FILE, meta)
    if report:
        write_series_report(series_dir, meta)
    return meta


def load_series(series_dir: str | Path) -> dict[str, Any]:
    p = Path(series_dir) / SERIES_FILE
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInput(f"{p}: not a series dir (need {SERIES_FILE} from run --repeat): {exc}") from None
    if meta.get("kind") != "series":
        raise BadInput(f"{p}: kind is {meta.get('kind')!r}, not 'series'")
    return meta


def is_series_dir(path: str | Path) -> bool:
    return (Path(path) / SERIES_FILE).is_file()


def write_series_report(series_dir: Path, meta: dict[str, Any]) -> None:
    from harness.report.history import history, key_of, trend_chart
    from harness.report.html import _TEMPLATES, _env

    trend, n = None, 0
    db = meta.get("history")
    if db:
        past = history(Path(db), key_of(meta["scenario"], meta["platform"]), conclusive_only=False, limit=200)
        n = len(past)
        png = trend_chart(past, series_dir / TREND_PNG, title=f"{meta['scenario'].get('name')}: failed requests "
                          "per rollout, history")
        trend = base64.b64encode(png).decode("ascii") if png else None
    rows = [dict(r, link=os.path.relpath(r["run_dir"], series_dir) + ("/index.html" if (
        Path(r["run_dir"]) / HTML_FILE).is_file() else "/summary.json")) if r.get("run_dir") else r
        for r in meta["rollouts"]]
    css = (_TEMPLATES / "report.css").read_text(encoding="utf-8")
    s = {"scenario": meta["scenario"].get("name"), "series_id": meta.get("series_id")}
    html = _env().get_template("series.html.j2").render(
        s=s, a=meta["aggregate"], rows=rows, css=css, trend=trend, history_n=n, history_db=db,
        generated=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    (series_dir / HTML_FILE).write_text(html, encoding="utf-8")
    (series_dir / JUNIT_FILE).write_bytes(series_junit(meta))


def series_junit(meta: dict[str, Any]) -> bytes:
    """One test case per rollout: a failed rollout is a failure, one that
    could not see is an error; the aggregate verdict rides as properties."""
    name = meta["scenario"].get("name")
    rows, agg = meta["rollouts"], meta["aggregate"]
    fails = sum(r["status"] == "fail" for r in rows)
    errors = sum(r["status"] not in ("pass", "fail") for r in rows)
    suites = ET.Element("testsuites", name="rollout-harness", tests=str(len(rows)), failures=str(fails),
                        errors=str(errors))
    suite = ET.SubElement(suites, "testsuite", name=f"rollout-harness series: {name}", tests=str(len(rows)),
                          failures=str(fails), errors=str(errors), skipped="0")
    props = ET.SubElement(suite, "properties")
    rf = agg.get("rollout_failure") or {}
    for key, value in (("verdict", agg["verdict"]["status"]), ("exit_code", agg["verdict"]["exit_code"]),
                       ("headline", agg["verdict"]["headline"]), ("failed_rollouts", f"{rf.get('k')}/{rf.get('n')}"),
                       ("interval", rf.get("interval")), ("series_dir", meta.get("series_id"))):
        ET.SubElement(props, "property", name=key, value=str(value))
    for r in rows:
        case = ET.SubElement(suite, "testcase", name=f"rollout {r['index']:02d}",
                             classname=f"rollout_harness.series.{name}")
        if r["status"] == "fail":
            el = ET.SubElement(case, "failure", message=r["headline"], type="gate")
            el.text = f"{r['failed_requests']} failed requests; top finding: {r.get('top_title') or 'none'}"
        elif r["status"] != "pass":
            ET.SubElement(case, "error", message=r["headline"], type="inconclusive")
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"
