"""Several runs side by side — typically best-practice against each mistake:
per run, failed requests by outcome, disruption seconds, p99 latency during
the rollout and the top finding. One self-contained HTML page and one PNG.
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

from harness.analysis import analyse
from harness.errors import BadInput
from harness.model.rundir import MANIFEST_FILE
from harness.report import charts
from harness.report.html import _TEMPLATES, _env, outcome_text

COMPARE_HTML = "compare.html"
COMPARE_PNG = "compare.png"


def resolve_run_dir(path: str | Path) -> Path:
    """A run dir, or a scenario's dir of runs (its latest run is used)."""
    p = Path(path)
    if (p / MANIFEST_FILE).is_file():
        return p
    if p.is_dir():
        runs = sorted(d for d in p.iterdir() if (d / MANIFEST_FILE).is_file())
        if runs:
            return runs[-1]
    raise BadInput(f"{p}: not a run dir (no {MANIFEST_FILE}) nor a directory of runs; "
                   "pass reports/<scenario>/<run-id> or reports/<scenario>")


def compare_row(run_dir: Path) -> dict[str, Any]:
    s = analyse(run_dir).summary
    w = s["rollout_window"]
    top = next((f for f in s["findings"]), None)
    outcomes = {k: v for k, v in w["outcomes"].items() if k not in ("ok", "dropped")}
    return {
        "scenario": s["scenario"], "run_dir": str(run_dir), "run_id": run_dir.name,
        "verdict": s["verdict"]["status"], "exit_code": s["verdict"]["exit_code"],
        "failed": w["service_failed"], "total": w["total"], "outcomes": outcomes,
        "outcome_text": outcome_text(outcomes),
        "disruption_seconds": s["disruption_seconds"], "p99_ms": w["latency_ms"]["p99"],
        "baseline_p99_ms": (s["phases"].get("baseline") or {}).get("latency_ms", {}).get("p99"),
        "top_rule": top["rule"] if top else None, "top_title": top["title"] if top else "no finding",
        "top_fix": top["fix"] if top else "",
        "accuracy": (s["attribution"].get("accuracy") or {}).get("accuracy"),
    }


def write_compare(run_dirs: list[str | Path], out_dir: str | Path) -> dict[str, Any]:
    if not run_dirs:
        raise BadInput("compare needs at least one run dir")
    dirs = [resolve_run_dir(d) for d in run_dirs]
    rows = [compare_row(d) for d in dirs]
    names = [r["scenario"] for r in rows]
    for r in rows:
        r["label"] = r["scenario"] if names.count(r["scenario"]) == 1 else f"{r['scenario']} ({r['run_id']})"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = charts.compare_chart(rows, out / COMPARE_PNG)
    css = (_TEMPLATES / "report.css").read_text(encoding="utf-8")
    html = _env().get_template("compare.html.j2").render(
        rows=rows, css=css, img=base64.b64encode(png).decode("ascii"),
        generated=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    (out / COMPARE_HTML).write_text(html, encoding="utf-8")
    return {"html": str(out / COMPARE_HTML), "png": str(out / COMPARE_PNG), "rows": rows}
