"""index.html: the page a reviewer reads, rendered with Jinja2 from the
summary and the chart PNGs.

Self-contained by construction: the CSS is inlined from templates/ and each
image is a base64 data URI, so the page opens from a CI artifact, a mail
attachment or an air-gapped laptop and loads nothing from the network.
"""

from __future__ import annotations

import base64
import datetime as dt
from importlib import resources
from typing import Any

import jinja2
import yaml

from harness.analysis.chains import STEPS
from harness.traffic.hostspeed import host_fact

_TEMPLATES = resources.files("harness.report") / "templates"


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )


def outcome_text(outcomes: dict[str, int], skip_ok: bool = True) -> str:
    items = [(o, n) for o, n in outcomes.items() if not (skip_ok and o == "ok") and n]
    items.sort(key=lambda kv: -kv[1])
    return ", ".join(f"{n} {o}" for o, n in items) or "—"


def _numbers(s: dict[str, Any]) -> list[dict[str, str]]:
    w = s["rollout_window"]
    base = (s["phases"].get("baseline") or {}).get("latency_ms", {}).get("p99")
    p99 = w["latency_ms"]["p99"]
    avail = s.get("availability")
    return [
        {"value": f"{w['service_failed']:,}", "label": "failed requests in the rollout",
         "sub": outcome_text(w["outcomes"]) if w["service_failed"] else f"of {w['total']:,} requests"},
        {"value": f"{s['disruption_seconds']:g} s", "label": "disruption",
         "sub": "time with failing requests" + (f" · availability {avail * 100:.3f}%" if avail is not None else "")},
        {"value": "—" if p99 is None else f"{p99:,.1f} ms", "label": "p99 latency in the rollout",
         "sub": "baseline " + ("—" if base is None else f"{base:,.1f} ms")},
    ]


def _by_pod(s: dict[str, Any], att_by_pod_outcome: dict[str, dict[str, int]]) -> tuple[list[str], list[dict]]:
    phases = s["attribution"]["by_pod_phase"]
    outcomes = sorted({o for d in att_by_pod_outcome.values() for o in d})
    rows = []
    for pod in sorted(att_by_pod_outcome, key=lambda p: -sum(att_by_pod_outcome[p].values())):
        ph = phases.get(pod, {})
        rows.append({"pod": pod, "outcomes": att_by_pod_outcome[pod],
                     "phases": ", ".join(f"{k} {v}" for k, v in sorted(ph.items(), key=lambda kv: -kv[1]))})
    return outcomes, rows


def _environment(s: dict[str, Any], manifest: dict[str, Any]) -> list[tuple[str, str]]:
    clock = manifest.get("clock") or {}
    rows: list[tuple[str, str]] = [("platform", str(s.get("platform"))), ("run status", s["status"]),
                                   ("run dir", s["run_dir"])]
    if clock.get("wall_anchor_ns"):
        started = dt.datetime.fromtimestamp(clock["wall_anchor_ns"] / 1e9, dt.timezone.utc)
        rows.append(("started", started.isoformat(timespec="seconds")))
    rollout = s.get("rollout") or {}
    rows.append(("rollout", "completed" if rollout.get("completed") else f"not completed: {rollout.get('error')}"))
    rows.append(("traffic", f"{s['asked_rate']} req/s asked, {s['achieved_rate']} achieved; "
                            f"{s['total']:,} requests, {s['dropped']:,} dropped by the engine"))
    lag = s["send_lag_ms"]
    rows.append(("send lag (ms)", f"p50 {lag.get('p50')}, p99 {lag.get('p99')}, max {lag.get('max')}"))
    host = (manifest.get("generator") or {}).get("host")
    if host is not None:  # harness.traffic.hostspeed: did the host run this machine at full speed?
        rows.append(("host speed", host_fact(host) or f"steady (probed {host.get('probed_s', 0):g} s)"))
    rows.append(("records", "complete" if s["records_complete"] else "a torn last batch was skipped"))
    workload = manifest.get("workload") or {}
    if workload.get("documents"):
        rows.append(("workload", f"{workload.get('origin')}: " + ", ".join(workload["documents"])))
        changes = (manifest.get("kubernetes") or {}).get("manifest_changes") or []
        if s.get("platform") == "kubernetes" and changes:
            rows.append(("changed on apply", "; ".join(changes)))
        risks = manifest.get("spec_risks") or []
        rows.append(("risks in the spec (check)", "; ".join(
            f"{r.get('severity', '').upper()} {r.get('check')} at {r.get('source')}:{r.get('line')}"
            for r in risks) or "none"))
        if s.get("platform") == "local":
            rows.append(("not played locally", "; ".join(workload.get("unmodelled_locally") or []) or "nothing"))
    for key in ("host", "versions"):
        if manifest.get(key):
            val = manifest[key]
            rows.append((key, ", ".join(f"{k} {v}" for k, v in val.items()) if isinstance(val, dict) else str(val)))
    return rows


def render_html(summary: dict[str, Any], manifest: dict[str, Any], images: dict[str, bytes],
                by_pod_outcome: dict[str, dict[str, int]], *, bin_ms: float) -> str:
    env = _env()
    css = (_TEMPLATES / "report.css").read_text(encoding="utf-8")
    chains = []
    present = set()
    for c in summary["chains"]:
        by_step = {st["step"]: st for st in c["steps"]}
        present |= set(by_step)
        chains.append({**c, "by_step": by_step})
    steps = [(k, label) for k, label in STEPS if k in present and k != "deletion"]
    outcomes, rows = _by_pod(summary, by_pod_outcome)
    findings = [{**f, "evidence_text": yaml.safe_dump(f["evidence"], sort_keys=False, width=110).strip()}
                for f in summary["findings"]]
    run_dir = summary["run_dir"].rstrip("/")
    return env.get_template("index.html.j2").render(
        s=summary, verdict=summary["verdict"], headline=summary["verdict"]["headline"].split(": ", 1)[-1],
        numbers=_numbers(summary), findings=findings,
        img={k: base64.b64encode(v).decode("ascii") for k, v in images.items()},
        chains=chains, chain_steps=steps, by_pod_outcomes=outcomes, by_pod_rows=rows,
        acc=summary["attribution"].get("accuracy"), css=css, bin_ms=int(bin_ms),
        scenario_yaml=yaml.safe_dump(manifest.get("scenario") or {}, sort_keys=False).strip(),
        environment=_environment(summary, manifest), outcome_text=outcome_text,
        run_id=run_dir.rsplit("/", 1)[-1],
        generated=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
