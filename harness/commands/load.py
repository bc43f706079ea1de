"""`rollout-harness load URL ...`: open-loop load at one URL, every request recorded."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.errors import BadInput
from harness.traffic.hostspeed import host_fact, host_sentence

EPILOG = """\
examples:
  # 2,000 req/s for 30 s, half of them on a new connection each
  rollout-harness load http://127.0.0.1:8080/work --rate 2000 --duration 30 --new-connection-ratio 0.5 --out reports/load/a
  # capacity: as fast as 50 keep-alive connections allow
  rollout-harness load http://127.0.0.1:8080/ --rate 0 --duration 10 --connections 50 --out reports/load/cap

The run dir gets requests/*.arrow (one record per request, read with
harness.model.requests.read_requests), manifest.json (its "generator": rate
asked and achieved, send lag, dropped, engine CPU) and summary.json (the
analysis: total, failed, outcomes, achieved_rate, dropped, send_lag_ms,
latency_ms).
Latency counts from each request's scheduled time (coordinated omission
corrected). Exit 0; 3 if the engine fell behind its schedule (dropped
requests or send-lag p99 over --max-lag-ms); 2 on bad arguments.
A probe beside the engine records when the host ran this machine slowly
(generator.host; a throttled VM host makes any generator late): the summary
says so. ROLLOUT_HARNESS_HOST_PROBE=0 turns it off; docs/engine.md.
"""


def _positive(kind):
    def conv(v: str):
        try:
            x = kind(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{v!r} is not a number") from None
        if x < 0:
            raise argparse.ArgumentTypeError(f"{v!r} must be >= 0")
        return x
    return conv


def register(sub) -> None:
    p = sub.add_parser("load", help="open-loop HTTP load at a URL, one record per request",
                       description="Fire open-loop HTTP/1.1 traffic at URL at a constant arrival rate and record "
                       "every request.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url", metavar="URL", help="http://host:port/path")
    p.add_argument("--rate", type=_positive(float), required=True,
                   help="requests per second, on a schedule fixed in advance; 0 = closed loop (capacity)")
    p.add_argument("--duration", type=_positive(float), required=True, help="seconds of traffic")
    p.add_argument("--connections", "-c", type=_positive(int), default=16,
                   help="keep-alive pool size per worker (closed loop: concurrency) [16]")
    p.add_argument("--new-connections", action="store_true", help="a new connection for every request")
    p.add_argument("--new-connection-ratio", type=float, default=None, metavar="R",
                   help="share of requests on a new connection, 0..1 (the rest use the pool) [0]")
    p.add_argument("--workers", "-w", type=_positive(int), default=1, help="engine processes [1]")
    p.add_argument("--timeout", type=_positive(float), default=5.0, help="read timeout, seconds [5]")
    p.add_argument("--connect-timeout", type=_positive(float), default=1.0, help="connect timeout, seconds [1]")
    p.add_argument("--max-inflight", type=_positive(int), default=512,
                   help="in-flight cap per worker; requests due beyond it are recorded as dropped [512]")
    p.add_argument("--method", default="GET", choices=["GET", "POST", "PUT", "DELETE"])
    p.add_argument("--header", "-H", action="append", default=[], metavar="'Name: value'", help="extra request header")
    p.add_argument("--pod-header", default="X-Pod-Name", help="response header naming the pod that answered")
    p.add_argument("--max-lag-ms", type=float, default=50.0, help="send-lag p99 above this makes the run inconclusive")
    p.add_argument("--out", required=True, metavar="DIR", help="run dir to create (must be new or empty)")
    p.set_defaults(func=run)


def _config(args):
    from harness.traffic.engine import EngineConfig

    if args.duration <= 0:
        raise BadInput("--duration must be > 0 seconds")
    if args.connections < 1:
        raise BadInput("--connections must be >= 1")
    if args.workers < 1:
        raise BadInput("--workers must be >= 1")
    ratio = 1.0 if args.new_connections else (args.new_connection_ratio or 0.0)
    headers = {}
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise BadInput(f"--header {h!r}: expected 'Name: value'")
        headers[name.strip()] = value.strip()
    cfg = EngineConfig(url=args.url, rate=args.rate,  # the global rate: worker w sends seqs w, w+n, ...
                       duration=args.duration,
                       connections=args.connections, new_connection_ratio=ratio, connect_timeout=args.connect_timeout,
                       read_timeout=args.timeout, max_inflight=args.max_inflight, method=args.method,
                       headers=headers, pod_header=args.pod_header)
    cfg.check()
    return cfg


def run(args: argparse.Namespace) -> int:
    from harness.runner import run_load
    from harness.traffic.progress import Progress

    cfg = _config(args)  # all argument errors before anything is created
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise BadInput(f"--out {out}: directory exists and is not empty; give a new run dir")
    outcome = run_load(cfg, out=out, workers=args.workers, max_lag_ms=args.max_lag_ms,
                       progress=Progress(label="load", duration=args.duration))
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    _print_summary(outcome.summary, manifest["generator"], outcome.status, out)
    return outcome.exit_code


def _print_summary(s: dict, gen: dict, status: str, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    c = Console(file=sys.stdout)
    t = Table(title=f"load: {status}", show_header=False, box=None)
    t.add_row("requests", f"{s['total']:,} ({s['failed']:,} failed)")
    t.add_row("outcomes", ", ".join(f"{k} {v:,}" for k, v in s["outcomes"].items()) or "-")
    t.add_row("rate", f"{gen['achieved_rate']:,.0f} req/s achieved"
              + (f" of {gen['asked_rate']:,.0f} asked" if gen["asked_rate"] else " (closed loop)"))
    lag, lat = s["send_lag_ms"], s["latency_ms"]
    t.add_row("send lag ms", f"p50 {lag['p50']}  p99 {lag['p99']}  max {lag['max']}")
    t.add_row("latency ms", f"p50 {lat['p50']}  p90 {lat['p90']}  p99 {lat['p99']}  max {lat['max']}")
    t.add_row("dropped", f"{s['dropped']:,}" + ("  ENGINE FELL BEHIND: results inconclusive" if gen["fell_behind"] else ""))
    host = (host_sentence if gen["fell_behind"] else host_fact)(gen.get("host"))
    if host:
        t.add_row("host", host)
    t.add_row("run dir", str(out))
    c.print(t)
