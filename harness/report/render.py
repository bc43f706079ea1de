"""Analyse a run dir and write every report file into it."""

from __future__ import annotations

from pathlib import Path
from typing import Any


from harness.analysis import Analysis, write_summary
from harness.model.outcome import OUTCOMES
from harness.report import charts
from harness.report.html import render_html
from harness.report.junit import write_junit

HTML_FILE = "index.html"
CHART_FILES = {"rate": "rate.png", "latency": "latency.png", "swimlanes": "swimlanes.png"}


def _by_pod_outcome(a: Analysis) -> dict[str, dict[str, int]]:
    att = a.attributed
    if att.empty:
        return {}
    grp = att.assign(pod=att["pod"].fillna("(no endpoint)")).groupby(["pod", "code"], observed=True).size()
    out: dict[str, dict[str, int]] = {}
    for (pod, code), n in grp.items():
        out.setdefault(str(pod), {})[OUTCOMES[int(code)].value] = int(n)
    return out


def _t_range(a: Analysis) -> tuple[int, int]:
    ts = [t for b in a.run.phase_bounds.values() for t in b]
    if a.timeline.n_bins:
        ts += [a.timeline.t0_ns, a.timeline.t0_ns + a.timeline.n_bins * a.timeline.bin_ns]
    ts += [int(e["t_ns"]) for e in a.run.events if e.get("pod")]
    return (min(ts), max(ts)) if ts else (0, 1)


def write_report(run_dir: str | Path) -> dict[str, Any]:
    """Analyse ``run_dir`` (the analysis writes summary.json) and write the
    PNGs, index.html and junit.xml into it. Returns the summary (its "verdict" has "status" and
    "exit_code"). Raises BadInput when ``run_dir`` is not a readable run dir."""
    a = write_summary(run_dir)
    out = Path(run_dir)
    summary = a.summary
    bounds = a.run.phase_bounds
    att = a.attributed
    failures = (att["pod"].to_numpy(dtype=object), att["t_ns"].to_numpy(), att["code"].to_numpy())
    images = {
        "rate": charts.rate_chart(a.timeline, bounds, out / CHART_FILES["rate"]),
        "latency": charts.latency_chart(a.timeline, bounds, out / CHART_FILES["latency"]),
        "swimlanes": charts.swimlanes_chart(a.pods, failures, bounds, _t_range(a), out / CHART_FILES["swimlanes"]),
    }
    html = render_html(summary, a.run.manifest, images, _by_pod_outcome(a), bin_ms=a.timeline.bin_ns / 1e6)
    (out / HTML_FILE).write_text(html, encoding="utf-8")
    write_junit(out, summary)
    return summary
