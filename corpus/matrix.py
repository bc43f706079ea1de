"""The corpus matrix: every corpus scenario (server x configuration) run on
the local platform as a user runs it, analysed, and compared with the
expectation its description wrote down before any run.

Why a script of its own: the expectations are about real servers nobody here
wrote, so the table it writes (docs/corpus.md between markers, and
corpus/results.json) is the evidence that the diagnosis holds beyond the
sample app. Usage (``make corpus`` installs the servers first)::

    python corpus/matrix.py [--only SERVER] [--cells NAME ...] [--out DIR]

A cell whose run comes out inconclusive is run once more; if it is
inconclusive again it stays so in the table, with its reason (never a match).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.analysis import analyse  # noqa: E402

sys.path.insert(0, str(ROOT / "corpus"))
import groundtruth  # noqa: E402

SCENARIOS = ROOT / "corpus" / "scenarios"
RESULTS = ROOT / "corpus" / "results.json"
DOC = ROOT / "docs" / "corpus.md"
BEGIN, END = "<!-- corpus-results:begin -->", "<!-- corpus-results:end -->"
CONFIGS = ("no-prestop", "prestop-graceful", "prestop-abrupt")
_EXPECT = re.compile(r"Expected:\s*verdict=(?P<verdict>\w+);\s*top=(?P<top>[-a-z|]+);\s*failures=(?P<fail>[-a-z_0-9|]+)")


class ExpectationError(ValueError):
    pass


def expectation(description: str, source: str = "") -> dict[str, Any]:
    """The machine-readable part of a cell's description:
    ``Expected: verdict=V; top=RULE[|RULE...]; failures=OUTCOME[|...]``
    (``none`` in ``top``: no finding at all is acceptable, as for a race
    that may not happen in a given run)."""
    m = _EXPECT.search(" ".join(description.split()))
    if not m:
        raise ExpectationError(f"{source}: description has no 'Expected: verdict=...; top=...; failures=...' line")
    return {"verdict": m["verdict"], "top": m["top"].split("|"), "failures": m["fail"].split("|")}


def split_name(name: str) -> tuple[str, str]:
    for c in CONFIGS:
        if name.endswith("-" + c):
            return name[: -len(c) - 1], c
    return name, ""


def run_once(scenario: Path, out: Path, extra: list[str] | None = None) -> tuple[Any, float]:
    args = [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(out), "--no-report", "-q"]
    for s in extra or []:
        args += ["--set", s]
    t0 = time.monotonic()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - t0
    if not (out / "manifest.json").exists():
        raise RuntimeError(f"{scenario.name}: no run dir written (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return analyse(out), wall


def run_cell(scenario: Path, out: Path, extra: list[str] | None = None) -> tuple[Any, list[float], list[str]]:
    """Run a cell; once more if inconclusive. Returns the last analysis, the
    wall times and the reasons of the inconclusive attempts."""
    walls: list[float] = []
    reasons: list[str] = []
    for attempt in (1, 2):
        a, wall = run_once(scenario, out / f"attempt-{attempt}", extra)
        walls.append(wall)
        v = a.summary["verdict"]
        if v["status"] != "inconclusive":
            break
        reasons.append("; ".join(v.get("reasons") or []) or "inconclusive")
    return a, walls, reasons


def judge(exp: dict[str, Any], verdict: str, top: str | None) -> str:
    """'match', 'mismatch' or 'inconclusive'."""
    if verdict == "inconclusive":
        return "inconclusive"
    got_top = top or "none"
    if got_top not in exp["top"]:
        return "mismatch"
    if verdict == exp["verdict"] or (top is None and "none" in exp["top"] and verdict == "pass"):
        return "match"
    return "mismatch"


def row(name: str, a: Any, exp: dict[str, Any], walls: list[float], reasons: list[str], load: float) -> dict[str, Any]:
    s = a.summary
    server, config = split_name(name)
    outcomes = {k: v for k, v in (s["rollout_window"].get("outcomes") or s["outcomes"]).items() if k != "ok" and v}
    acc = (s["attribution"] or {}).get("accuracy")
    verdict = s["verdict"]["status"]
    top = s["top_finding"]
    truth = groundtruth.counts(a.run.run_dir)
    r = {
        "cell": name, "server": server, "config": config,
        "signal": a.run.scenario.app.stop_signal,
        "prestop": bool(a.run.scenario.deployment.lifecycle.pre_stop),
        "total": s["total"], "service_failed": s["service_failed"], "outcomes": outcomes,
        "verdict": verdict, "verdict_reasons": s["verdict"].get("reasons") or [],
        "top_finding": top, "findings": [f"{f['rule']}:{f.get('severity')}:{f.get('failures')}" for f in s["findings"]],
        "expected": exp, "match": judge(exp, verdict, top),
        "truth": truth, "truth_top": groundtruth.dominant_rule(truth),
        "agrees_with_truth": (top or None) in (groundtruth.dominant_rule(truth) or "").split("|") if truth else top is None,
        "failure_kinds_expected": set(outcomes) <= set(exp["failures"]) | {"dropped"},
        "attribution": None if acc is None else {"correct": acc["correct"], "of": acc["failures_with_ground_truth"],
                                                 "accuracy": acc["accuracy"], "ambiguous": acc.get("ambiguous")},
        "run_dir": str(a.run.run_dir), "wall_s": [round(w, 1) for w in walls], "inconclusive_attempts": reasons,
        "load_avg_1m": round(load, 2),
    }
    gt, cv = s.get("ground_truth") or {}, s.get("client_view") or {}
    r["findings_contradicted"] = gt.get("findings_contradicted")  # the analysis's own check against route_pod
    r["contradicted_rules"] = gt.get("contradicted_rules")
    r["client_visible"] = cv.get("visible")  # failures a retrying client would not absorb
    return r


def _fmt_outcomes(o: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(o.items(), key=lambda kv: -kv[1])) or "0"


def _na(v: Any) -> str:
    return "n/a" if v is None else str(v)


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| server | config (signal) | failed (rollout window) | verdict | top finding | expected top | match "
            "| ground truth: mechanisms | truth's top | attribution | contradicted findings | client-visible "
            "| wall s | load |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        acc = r["attribution"]
        acc_s = "n/a" if acc is None else f"{acc['accuracy'] * 100:.1f}% ({acc['correct']}/{acc['of']})"
        sig = ("preStop 3 s, " if r["prestop"] else "") + r["signal"]
        lines.append(f"| {r['server']} | {r['config']} ({sig}) | {_fmt_outcomes(r['outcomes'])} | {r['verdict']} "
                     f"| {r['top_finding'] or '—'} | {' or '.join(r['expected']['top'])} | {r['match']} "
                     f"| {_fmt_outcomes(r['truth'])} | {(r['truth_top'] or '—').replace('|', ' or ')} | {acc_s} "
                     f"| {_na(r.get('findings_contradicted'))} | {_na(r.get('client_visible'))} "
                     f"| {'+'.join(str(w) for w in r['wall_s'])} | {r['load_avg_1m']} |")
    return head + "\n".join(lines) + "\n"


def totals(rows: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    judged = [r for r in rows if r["match"] != "inconclusive"]
    with_fail = [r for r in rows if r["attribution"]]
    worst = min((r["attribution"]["accuracy"] for r in with_fail), default=None)
    return {"cells": len(rows), "judged": len(judged), "matched": sum(r["match"] == "match" for r in judged),
            "inconclusive": len(rows) - len(judged), "worst_attribution": worst,
            "top_agrees_with_truth": sum(bool(r["agrees_with_truth"]) for r in judged),
            "findings_contradicted": sum(r.get("findings_contradicted") or 0 for r in rows),
            "attribution_correct": sum(r["attribution"]["correct"] for r in with_fail),
            "attribution_of": sum(r["attribution"]["of"] for r in with_fail), "matrix_wall_s": round(wall_s, 1)}


def write_doc(rows: list[dict[str, Any]], tot: dict[str, Any], when: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC}: markers {BEGIN} / {END} missing")
    acc = (f"{tot['attribution_correct']}/{tot['attribution_of']} failures attributed to the pod the platform "
           f"really routed them to; worst cell {tot['worst_attribution'] * 100:.1f}%"
           if tot["attribution_of"] else "no failure to attribute")
    body = (f"\nGenerated by `make corpus` on {when}: {tot['matched']}/{tot['judged']} judged cells match their "
            f"expectation ({tot['inconclusive']} inconclusive); in {tot['top_agrees_with_truth']}/{tot['judged']} the top "
            f"finding is the one ground truth names; {tot['findings_contradicted']} findings contradicted by the "
            f"analysis's own ground-truth check; {acc}; matrix wall time {tot['matrix_wall_s']} s.\n\n"
            + table(rows))
    pre, rest = text.split(BEGIN, 1)
    DOC.write_text(pre + BEGIN + body + END + rest.split(END, 1)[1], encoding="utf-8")


def reanalyse(d: Path, write: bool) -> int:
    """Analyse an earlier matrix's run dirs again with the current rules,
    keeping the wall times and load averages it recorded."""
    from harness.model.scenario import load_scenario
    before = {}
    if (d / "results.json").exists():
        before = {c["cell"]: c for c in json.loads((d / "results.json").read_text())["cells"]}
    rows = []
    for cell in sorted(p for p in d.iterdir() if p.is_dir()):
        attempts = sorted(cell.glob("attempt-*")) or [cell]
        a = analyse(attempts[-1])
        exp = expectation(load_scenario(SCENARIOS / f"{cell.name}.yaml").description, cell.name)
        old = before.get(cell.name, {})
        r = row(cell.name, a, exp, old.get("wall_s", []), old.get("inconclusive_attempts", []),
                old.get("load_avg_1m", float("nan")))
        r["wall_s"] = old.get("wall_s", [])
        rows.append(r)
        print(f"{cell.name:34} {r['verdict']:12} top={r['top_finding']} failed={_fmt_outcomes(r['outcomes'])} "
              f"{r['match']} truth={r['truth_top']} attribution={r['attribution'] and r['attribution']['accuracy']} "
              f"{r['findings']}")
    wall = json.loads((d / "results.json").read_text())["totals"]["matrix_wall_s"] if before else 0.0
    tot = totals(rows, wall)
    if write:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        result = {"generated": when, "reanalysed_from": str(d), "totals": tot, "cells": rows}
        RESULTS.write_text(json.dumps(result, indent=1, default=str) + "\n")
        write_doc(rows, tot, when + f" (run dirs of {d.name}, analysed again)")
    print(json.dumps(tot))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="run only this server's cells")
    ap.add_argument("--cells", nargs="*", help="run only these cells (scenario names)")
    ap.add_argument("--out", default=str(ROOT / "reports" / "corpus"), help="where run dirs go")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/corpus.md and corpus/results.json")
    ap.add_argument("--reanalyse", metavar="DIR",
                    help="no new runs: analyse again the run dirs of an earlier matrix (DIR/<cell>/attempt-N), "
                         "e.g. after the diagnosis rules changed")
    args = ap.parse_args(argv)
    if args.reanalyse:
        return reanalyse(Path(args.reanalyse), write=not args.no_doc)
    files = sorted(SCENARIOS.glob("*.yaml"))
    if args.only:
        files = [f for f in files if split_name(f.stem)[0] == args.only]
    if args.cells:
        files = [f for f in files if f.stem in args.cells]
    if not files:
        print(f"no corpus scenario selected in {SCENARIOS}", file=sys.stderr)
        return 2
    from harness.model.scenario import load_scenario
    exps = {f.stem: expectation(load_scenario(f).description, str(f)) for f in files}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) / stamp
    rows: list[dict[str, Any]] = []
    t0 = time.monotonic()
    for f in files:
        load = os.getloadavg()[0]
        a, walls, reasons = run_cell(f, out / f.stem)
        r = row(f.stem, a, exps[f.stem], walls, reasons, load)
        rows.append(r)
        print(f"{f.stem:34} {r['verdict']:12} top={r['top_finding']} failed={_fmt_outcomes(r['outcomes'])} "
              f"{r['match']} attribution={r['attribution'] and r['attribution']['accuracy']} load={load:.1f}",
              flush=True)
    tot = totals(rows, time.monotonic() - t0)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    result = {"generated": when, "totals": tot, "cells": rows}
    (out / "results.json").write_text(json.dumps(result, indent=1, default=str))
    if not args.no_doc and not args.only and not args.cells:
        RESULTS.write_text(json.dumps(result, indent=1, default=str) + "\n")
        write_doc(rows, tot, when)
    print(json.dumps(tot))
    return 0 if tot["matched"] == tot["judged"] else 1


if __name__ == "__main__":
    sys.exit(main())
