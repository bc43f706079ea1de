"""`rollout-harness load URL ...`: open-loop load at one URL, every request recorded."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from harness.errors import EXIT_INCONCLUSIVE, BadInput

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
    from harness.analysis import write_summary
    from harness.model.clock import RunClock
    from harness.model.requests import REQUESTS_DIR, read_requests_table
    from harness.model.rundir import MANIFEST_FILE, host_info, versions, write_json_atomic
    from harness.traffic.summary import generator_figures

    cfg = _config(args)  # all argument errors before anything is created
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise BadInput(f"--out {out}: directory exists and is not empty; give a new run dir")
    out.mkdir(parents=True, exist_ok=True)
    clock = RunClock.start()
    manifest = {"kind": "load", "url": args.url, "platform": "none", "status": "running",
                "engine": {**cfg.__dict__, "rate": args.rate, "workers": args.workers},
                "clock": clock.as_dict(), "host": host_info(), "versions": versions()}
    write_json_atomic(out / MANIFEST_FILE, manifest)
    status = "complete"
    try:
        results = _drive(cfg, clock, out / REQUESTS_DIR, args.workers, args.duration)
    except KeyboardInterrupt:
        status, results = "interrupted", []
    table, complete = read_requests_table(out)
    generator = generator_figures(table, results, asked_rate=args.rate, workers=args.workers,
                                  records_complete=complete, max_lag_ms=args.max_lag_ms)
    manifest.update(status=status, generator=generator)
    write_json_atomic(out / MANIFEST_FILE, manifest)
    summary = write_summary(out).summary
    _print_summary(summary, generator, status, out)
    if status == "interrupted":
        return 130
    return EXIT_INCONCLUSIVE if generator["fell_behind"] else 0


def _drive(cfg, clock, requests_dir: Path, workers: int, duration: float):
    from harness.traffic.engine import Engine
    from harness.traffic.progress import Progress, Snapshot
    from harness.traffic.workers import run_on_fast_loop, run_workers

    with Progress(label="load", duration=duration) as progress:
        if workers > 1:
            return run_workers(cfg, clock=clock, out_dir=requests_dir, workers=workers,
                               on_tick=lambda slots: progress.update(Snapshot.from_shared(slots)))

        async def main():
            engine = Engine(cfg, clock=clock, out_dir=requests_dir)
            loop = asyncio.get_running_loop()
            interrupted = []

            def on_sigint():
                interrupted.append(1)
                engine.stop()  # first: stop scheduling, let in-flight finish; second: abort

            loop.add_signal_handler(signal.SIGINT, on_sigint)

            def tick():
                progress.update(Snapshot.from_live(engine.live))
                loop.call_later(0.25, tick)

            loop.call_later(0.25, tick)
            result = await engine.run()
            if interrupted:
                raise KeyboardInterrupt
            return [result]

        return run_on_fast_loop(main)


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
    t.add_row("run dir", str(out))
    c.print(t)
