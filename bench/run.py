#!/usr/bin/env python3
"""`make bench`: the engine measured against wrk in the same invocation.

nginx (1 worker, its own config, 127.0.0.1 only) is pinned to CPU 0; wrk and
the engine take turns on CPU 1 with the same 50 keep-alive connections.
Figures are ratios against wrk from this run, never absolute bars, so a
loaded machine shifts both sides. Then the open loop at fixed rates
(achieved vs asked, send lag, dropped), then analysis + report speed.
Stops everything it started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
sys.path.insert(0, str(ROOT))

from harness.traffic.hostspeed import HostSpeedProbe  # noqa: E402


def host_probe(seconds: float) -> HostSpeedProbe:
    """The host's speed beside a measurement, probed from CPU 0 (nginx's, lightly loaded)."""
    return HostSpeedProbe(seconds, cpu=0, wait_ready=True, enabled=True)

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{ add_header X-Pod-Name bench-nginx; return 200 "ok\\n"; }}
  }}
}}
"""


def ensure_tools() -> None:
    missing = [t for t in ("nginx", "wrk") if not (shutil.which(t) or Path(f"/usr/sbin/{t}").exists())]
    if not missing:
        return
    print(f"installing {' '.join(missing)} from Debian (apt-get)...", flush=True)
    if os.geteuid() != 0:
        sys.exit(f"bench needs {missing}; install them (apt-get install nginx-light wrk) or run as root")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    pkgs = {"nginx": "nginx-light", "wrk": "wrk"}
    subprocess.run(["apt-get", "install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=600", *[pkgs[m] for m in missing]],
                   check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


#: Run server and generators at a real-time priority when we may (root + chrt): on a
#: machine shared with other work this keeps both sides of the ratio measurable.
#: Bounded runs only; the kernel's RT throttling still leaves 5% to everything else.
RT = os.environ.get("BENCH_RT", "1") == "1" and os.geteuid() == 0 and shutil.which("chrt") is not None


def pinned(cpu: int, argv: list[str]) -> list[str]:
    pre = ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []
    if RT:
        pre = ["chrt", "-f", "20"] + pre
    return pre + argv


@contextlib.contextmanager
def nginx_server(prefix: str):
    """nginx on CPU 0 serving NGINX_CONF from a temporary dir: yields (url, its
    master's pid, the dir); stopped (SIGTERM, then SIGKILL) and removed after."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    port = free_port()
    (work / "nginx.conf").write_text(NGINX_CONF.format(dir=work, port=port))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    srv = subprocess.Popen(pinned(0, [nginx, "-c", str(work / "nginx.conf"), "-p", str(work)]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/", srv.pid, work
    finally:
        os.killpg(srv.pid, signal.SIGTERM)
        try:
            srv.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(srv.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` and its living descendants
    (nginx's workers are children of its master)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total


def run_wrk(url: str, seconds: float, conns: int) -> tuple[float, float]:
    c0 = child_cpu()
    out = subprocess.run(pinned(1, ["wrk", "-t1", f"-c{conns}", f"-d{int(seconds)}s", url]),
                         capture_output=True, text=True, check=True).stdout
    cpu = child_cpu() - c0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    rps = float(m.group(1))
    return rps, cpu / (rps * seconds) * 1e6


def run_engine(url: str, seconds: float, *, rate: float, conns: int, workdir: Path, tag: str,
               pure: bool = False, workers: int = 1, cpu: int | None = 1, lags: list | None = None) -> tuple[dict, float]:
    """``pure``: the engine's pure-Python path (ROLLOUT_HARNESS_PURE_PYTHON=1) instead of
    the compiled one; ``cpu`` None: not pinned (the workers comparison); ``lags``: gets
    (scheduled, sent) CLOCK_MONOTONIC ns arrays of the requests that were sent."""
    out = workdir / tag
    argv = [PY, "-m", "harness", "load", url, "--rate", str(rate), "--duration", str(seconds),
            "--connections", str(conns), "--workers", str(workers), "--out", str(out)]
    # the bench probes the host itself, pinned to CPU 0 and for wrk as well: not the engine's own probe too
    env = {**os.environ, "ROLLOUT_HARNESS_PURE_PYTHON": "1" if pure else "0", "ROLLOUT_HARNESS_HOST_PROBE": "0"}
    subprocess.run(pinned(cpu, argv) if cpu is not None else (["chrt", "-f", "20"] if RT else []) + argv,
                   capture_output=True, text=True, env=env)
    summary = json.loads((out / "summary.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    generator = manifest["generator"]
    if lags is not None:
        lags.append(request_times(out, manifest["clock"]["monotonic_anchor_ns"]))
    shutil.rmtree(out, ignore_errors=True)
    # CPU of the engine while traffic ran (recording included; interpreter start-up and the
    # summary pass excluded, as wrk's start-up is negligible)
    return summary, generator["cpu_s"] / max(summary["total"], 1) * 1e6


def request_times(run_dir: Path, anchor_ns: int):
    """(scheduled, sent) CLOCK_MONOTONIC ns of the run's sent requests."""
    import numpy as np

    from harness.model.requests import read_requests_table

    table, _ = read_requests_table(run_dir)
    sched = table.column("scheduled_ns").to_numpy()
    sent = table.column("sent_ns").to_numpy()
    keep = sent >= 0
    return sched[keep] + anchor_ns, sent[keep] + anchor_ns


def outside_host_windows(sched, sent, windows, caught_up_ns: int | None = 200_000):
    """The requests not touched by the host's slow windows (harness/traffic/hostspeed.py): a
    request is touched when scheduled inside a window, or after it while the engine
    was still behind (until the first request sent within ``caught_up_ns`` of its
    schedule, the open loop's wake quantum; ``caught_up_ns`` None: only those scheduled
    inside, so the catch-up counts against the engine). A boolean mask over the requests."""
    import numpy as np

    order = np.argsort(sched, kind="stable")
    by_sched = sched[order]
    lag = (sent - sched)[order]
    keep = np.ones(len(sched), dtype=bool)
    for start, end, _ in windows:
        i = int(np.searchsorted(by_sched, start))
        j = int(np.searchsorted(by_sched, end))
        while caught_up_ns is not None and j < len(by_sched) and lag[j] > caught_up_ns:
            j += 1
        keep[order[i:j]] = False
    return keep


def hot_path() -> str:
    """Which engine path `load` runs here: compiled (make install built it) or pure Python."""
    probe = subprocess.run([PY, "-c", "from harness.traffic import connections as c; print(c.HOTPATH is not None)"],
                           capture_output=True, text=True, cwd=ROOT)
    return "compiled (harness/traffic/hotpath.pyx)" if probe.stdout.strip() == "True" else \
        "pure Python (no compiled hot path: make install builds it when a C compiler is there)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 10)))
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 3)))
    ap.add_argument("--rates", default=os.environ.get("BENCH_RATES", "5000,10000,20000"))
    ap.add_argument("--workers-rounds", type=int, default=int(os.environ.get("BENCH_WORKERS_ROUNDS", 3)),
                    help="rounds of the 1-vs-2-workers closed loop (0: skip)")
    ap.add_argument("--skip-analysis", action="store_true")
    ap.add_argument("--open-both", action="store_true", help="the open loop on the pure-Python path too")
    ap.add_argument("--skip-closed", action="store_true", help="no closed loop (wrk vs the engine)")
    args = ap.parse_args()

    ensure_tools()
    with nginx_server("rollout-bench-") as (url, srv_pid, work):
        print(f"# engine vs wrk: nginx on CPU 0, generator on CPU 1, 50 keep-alive connections, "
              f"{args.seconds:g} s x {args.rounds} rounds (median){', SCHED_FIFO 20' if RT else ''}; "
              f"load average before: {os.getloadavg()[0]:.2f}")
        print(f"# engine hot path: {hot_path()}; the pure-Python path runs in the same rounds")
        wrk, eng, pure = [], [], []
        for r in range(0 if args.skip_closed else args.rounds):
            slow = []  # the host's slow share during wrk, the engine, pure Python (harness/traffic/hostspeed.py)
            with host_probe(args.seconds + 30) as probe:
                wrk.append(run_wrk(url, args.seconds, 50))
            slow.append(probe.slow_share)
            with host_probe(args.seconds + 30) as probe:
                s, us = run_engine(url, args.seconds, rate=0, conns=50, workdir=work, tag=f"closed-{r}")
            slow.append(probe.slow_share)
            eng.append((s["achieved_rate"], us, s["total"], s["failed"]))
            with host_probe(args.seconds + 30) as probe:
                p, pus = run_engine(url, args.seconds, rate=0, conns=50, workdir=work, tag=f"pure-{r}", pure=True)
            slow.append(probe.slow_share)
            pure.append((p["achieved_rate"], pus))
            print(f"  round {r + 1}: wrk {wrk[-1][0]:,.0f} req/s ({wrk[-1][1]:.2f} us CPU/req) | engine "
                  f"{eng[-1][0]:,.0f} req/s ({us:.2f} us CPU/req, {s['total']:,} recorded, {s['failed']} failed) "
                  f"| pure Python {pure[-1][0]:,.0f} req/s ({pus:.2f} us CPU/req) | ratio {eng[-1][0] / wrk[-1][0]:.2f} "
                  f"| host slow {' / '.join(f'{x:.1%}' for x in slow)}", flush=True)
        if wrk:
            w_rps = statistics.median(x[0] for x in wrk)
            w_cpu = statistics.median(x[1] for x in wrk)
            e_rps = statistics.median(x[0] for x in eng)
            e_cpu = statistics.median(x[1] for x in eng)
            p_rps = statistics.median(x[0] for x in pure)
            p_cpu = statistics.median(x[1] for x in pure)
            print(f"wrk      {w_rps:>10,.0f} req/s   {w_cpu:6.2f} us CPU/request")
            print(f"engine   {e_rps:>10,.0f} req/s   {e_cpu:6.2f} us CPU/request (every request recorded)")
            print(f"ratio    {e_rps / w_rps:10.2f} x wrk throughput   {w_cpu / e_cpu:6.2f} x wrk CPU efficiency")
            print(f"pure     {p_rps:>10,.0f} req/s   {p_cpu:6.2f} us CPU/request: {p_rps / w_rps:.2f} x wrk "
                  "(the fallback without a C compiler)")
            print(f"# load average after the closed loop: {os.getloadavg()[0]:.2f}")
        print(f"\n# open loop, one worker, 50 connections; load average before: {os.getloadavg()[0]:.2f}")
        print("# host: the share of the run the host ran this machine slowly (harness/traffic/hostspeed.py); late: sent "
              "over 1.1 ms after schedule; in windows: of those, scheduled inside a host window; p99 outside: "
              "the send-lag p99 of the requests scheduled outside the windows (the catch-up after one counts)")
        print(f"{'path':>8} {'asked':>8} {'achieved':>10} {'off by':>8} {'lag p50':>8} {'lag p99':>8} {'lag max':>8} "
              f"{'dropped':>8} {'host':>6} {'late':>6} {'in windows':>10} {'p99 outside':>11}")
        import numpy as np

        for rate in [float(x) for x in args.rates.split(",") if x]:
            for pure in (False, True) if args.open_both else (False,):
                times: list = []
                with host_probe(args.seconds + 30) as probe:
                    s, _ = run_engine(url, args.seconds, rate=rate, conns=50, workdir=work,
                                      tag=f"open-{rate:g}-{pure}", pure=pure, lags=times)
                sched, sent = times[0]
                lag_ms = (sent - sched) / 1e6
                outside = outside_host_windows(sched, sent, probe.windows, caught_up_ns=None)
                late = lag_ms > 1.1
                p99_out = float(np.percentile(lag_ms[outside], 99)) if outside.any() else float("nan")
                off = (s["achieved_rate"] - rate) / rate * 100
                lag = s["send_lag_ms"]
                print(f"{'python' if pure else 'compiled':>8} {rate:>8,.0f} {s['achieved_rate']:>10,.0f} {off:>7.2f}% "
                      f"{lag['p50']:>7.2f}ms {lag['p99']:>7.2f}ms {lag['max']:>7.1f}ms {s['dropped']:>8,} "
                      f"{probe.slow_share:>6.1%} {int(late.sum()):>6,} {int((late & ~outside).sum()):>10,} "
                      f"{p99_out:>9.2f}ms", flush=True)
                print(f"         {probe.describe()}")
        print(f"# load average after the open loop: {os.getloadavg()[0]:.2f}")
        if args.workers_rounds:
            # Workers: the same closed loop from 1 and from 2 engine processes, unpinned (nginx
            # keeps CPU 0): on a 2-core machine the second worker shares a core with nginx,
            # so this shows what the machine allows, not the engine's scaling alone.
            print(f"\n# workers: closed loop, 50 connections per worker, unpinned, {args.workers_rounds} rounds "
                  f"(median); load average before: {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs")
            by_n: dict[int, list[float]] = {1: [], 2: []}
            cpu_n: dict[int, list[float]] = {1: [], 2: []}
            srv_n: dict[int, list[float]] = {1: [], 2: []}
            for r in range(args.workers_rounds):
                for n in (1, 2):
                    c0 = tree_cpu(srv_pid)
                    s, us = run_engine(url, args.seconds, rate=0, conns=50, workdir=work, tag=f"w{n}-{r}",
                                       workers=n, cpu=None)
                    by_n[n].append(s["achieved_rate"])
                    cpu_n[n].append(us)
                    srv_n[n].append((tree_cpu(srv_pid) - c0) / max(s["total"], 1) * 1e6)
                print(f"  round {r + 1}: 1 worker {by_n[1][-1]:,.0f} req/s ({cpu_n[1][-1]:.2f} us CPU/req; "
                      f"server {srv_n[1][-1]:.2f}) | 2 workers {by_n[2][-1]:,.0f} req/s ({cpu_n[2][-1]:.2f} us "
                      f"CPU/req, both; server {srv_n[2][-1]:.2f})", flush=True)
            one, two = statistics.median(by_n[1]), statistics.median(by_n[2])
            e, n_us = statistics.median(cpu_n[1]), statistics.median(srv_n[2])
            cores = os.cpu_count() or 1
            print(f"2 workers / 1 worker: {two / one:.2f} x throughput; engine CPU per request "
                  f"{statistics.median(cpu_n[2]) / e:.2f} x")
            # What this host allows: with 2 workers, the workers and the server share every core,
            # so the rate is at most cores / (engine + server CPU per request); one worker is
            # bounded by its own core (1 / engine CPU per request).
            bound = cores / ((e + n_us) / 1e6)
            print(f"this host's bound for 2 workers: {cores} cores / ({e:.2f} engine + {n_us:.2f} server us CPU/req) "
                  f"= {bound:,.0f} req/s = {bound / one:.2f} x one worker's rate (1.8 x needs a core per worker "
                  f"plus the server's)")

    if not args.skip_analysis:
        bench_file = ROOT / "bench" / "analysis_bench.py"
        if bench_file.exists():
            print("\n# analysis + report of 1,000,000 request records")
            subprocess.run([PY, str(bench_file)], check=False)
        else:
            print("\n# analysis bench: not built yet (bench/analysis_bench.py)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
