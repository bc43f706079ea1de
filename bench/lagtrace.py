#!/usr/bin/env python3
"""Where the open loop's send lag comes from (issue 10): one engine, in this
process, at a fixed rate against a local nginx (bench/run.py's), with every
pump wake-up, record flush, GC collection, progress refresh, sweep and dial
timed, and this thread's run-queue wait (/proc/thread-self/schedstat) read at
each wake-up.

Each wake-up of the pump is late by ``target -> entry`` (target: when the
earliest unsent request was due). The late ones are put in one bucket, in
this order: our own work overlapping the wait (flush, gc, progress, sweep,
dial), the thread waiting for a CPU (run-queue wait during the lateness),
else the timer (the loop's timer granularity or oversleep). A request's send
lag is its wake-up's lateness plus its place in the burst, so the buckets
say which cause to fix.

    bench/lagtrace.py --rate 10000 --seconds 3 [--pure] [--timer loop|precise]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=10000)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--pure", action="store_true", help="the pure-Python connection path")
    ap.add_argument("--timer", choices=["default", "loop", "precise"], default="default",
                    help="the pump's timer: the loop's (ms ticks) or the precise one (timerfd); default: the engine's")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--no-gc", action="store_true", help="the cyclic GC off for the run (an experiment)")
    ap.add_argument("--terminal", action="store_true",
                    help="the progress display as on a terminal (rich's refresh thread, 4 times a second)")
    ap.add_argument("--late-ms", type=float, default=1.1)
    args = ap.parse_args()
    if args.pure:
        os.environ["ROLLOUT_HARNESS_PURE_PYTHON"] = "1"
    os.environ["ROLLOUT_HARNESS_HOST_PROBE"] = "0"  # the trace runs its own probe, pinned to CPU 0

    from run import nginx_server  # bench/run.py

    with nginx_server("rollout-lagtrace-") as (url, pid, work):
        return trace(args, url, work, pid)


def server_worker(master: int) -> int:
    """nginx's worker process (the master's child)."""
    for _ in range(100):
        kids = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if kids:
            return int(kids[0])
        time.sleep(0.02)
    return master


class RunQueueSampler:
    """Every millisecond, from a thread: the run-queue wait (ns runnable but not
    running) of the engine's thread and of the server's worker, so a late
    request's wait can be split into "the engine had no CPU" and "the server
    had no CPU" (then its responses, and the pool's free connections, came late)."""

    def __init__(self, engine_fd: int, server_pid: int):
        import threading

        self.engine_fd = engine_fd
        self.server_fd = os.open(f"/proc/{server_worker(server_pid)}/schedstat", os.O_RDONLY)
        self.samples: list[tuple[int, int, int]] = []
        self.stacks: list[tuple[int, str]] = []  # the engine thread's Python stack, each ms
        import threading as _t

        self.main_id = _t.main_thread().ident
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            e = os.pread(self.engine_fd, 64, 0).split()
            v = os.pread(self.server_fd, 64, 0).split()
            self.samples.append((time.monotonic_ns(), int(e[1]), int(v[1]), int(e[0]), int(v[0])))
            f = sys._current_frames().get(self.main_id)
            names = []
            while f is not None and len(names) < 5:
                names.append(f"{f.f_code.co_name}:{f.f_lineno}")
                f = f.f_back
            self.stacks.append((time.monotonic_ns(), " < ".join(names)))
            time.sleep(0.001)

    def waits(self, t0, t1):
        """Run-queue wait of (engine, server) within [t0, t1], interpolated, arrays."""
        import numpy as np

        a = np.array(self.samples, dtype=np.float64)
        return ((np.interp(t1, a[:, 0], a[:, 1]) - np.interp(t0, a[:, 0], a[:, 1])),
                (np.interp(t1, a[:, 0], a[:, 2]) - np.interp(t0, a[:, 0], a[:, 2])))

    def split(self, t0: int, t1: int) -> str:
        """[t0, t1] of the engine and the server: ms on a CPU / waiting for one / off both (asleep or blocked)."""
        import numpy as np

        a = np.array(self.samples, dtype=np.float64)
        out = []
        for name, run, wait in (("engine", 3, 1), ("server", 4, 2)):
            r = (np.interp(t1, a[:, 0], a[:, run]) - np.interp(t0, a[:, 0], a[:, run])) / 1e6
            w = (np.interp(t1, a[:, 0], a[:, wait]) - np.interp(t0, a[:, 0], a[:, wait])) / 1e6
            out.append(f"{name} on-CPU {r:.2f} / run-queue {w:.2f} / off {max((t1 - t0) / 1e6 - r - w, 0):.2f}")
        return "; ".join(out)


def trace(args, url: str, work: Path, server_pid: int) -> int:
    import numpy as np
    from run import host_probe, outside_host_windows

    from harness.model.clock import RunClock
    from harness.model.requests import read_requests_table
    from harness.traffic import engine as engine_mod
    from harness.traffic.engine import Engine, EngineConfig
    from harness.traffic.progress import Progress
    from harness.traffic.session import TrafficSession, run_standalone

    if args.timer != "default" and hasattr(engine_mod, "PRECISE_TIMER"):
        engine_mod.PRECISE_TIMER = args.timer == "precise"
    mono = time.monotonic_ns
    sched_fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)

    def run_delay() -> int:
        return int(os.pread(sched_fd, 64, 0).split()[1])

    ev: dict[str, list] = {k: [] for k in ("flush", "gc", "progress", "sweep", "dial")}
    import collections

    engine_ref: list = []
    waited: set[int] = set()
    pool: list[tuple[int, int, int, int, int]] = []  # after each pump: in flight, waiting, idle, pool size
    wakes: list[tuple[int, int, int, int]] = []  # (target, entry, exit, 0)
    gc_open: dict[int, int] = {}

    def on_gc(phase, info):
        if phase == "start":
            gc_open[info["generation"]] = mono()
        else:
            ev["gc"].append((gc_open.pop(info["generation"], mono()), mono(), info["generation"]))
            ev["gc"][-1] = (*ev["gc"][-1][:2], info["generation"])

    gc.callbacks.append(on_gc)
    clock = RunClock.start()
    anchor = clock.monotonic_anchor_ns
    config = EngineConfig(url=url, rate=args.rate, duration=args.seconds, connections=args.connections)
    session = TrafficSession(config, clock=clock, out_dir=work / "requests")
    orig_run = session.run

    async def run_traced():
        # instrument the engine as soon as the session makes it
        orig_init = Engine.__init__

        def init(self, *a, **kw):
            orig_init(self, *a, **kw)
            timed(self, "_flush_tick", "flush")
            timed(self, "_sweep", "sweep")
            timed(self, "_dial", "dial")
            pump = self._pump
            engine_ref.append(self)

            class Waiting(collections.deque):  # remembers every request that waited for a connection
                def append(self, item):
                    waited.add(item[0])
                    super().append(item)

            self._waiting = Waiting()

            def traced_pump():
                target = self._next_sched + anchor
                t0 = mono()
                pump()
                t1 = mono()
                if target <= t0:  # a wake-up with something due (responses also call the pump)
                    wakes.append((target, t0, t1, 0))
                pool.append((t1, self._inflight, len(self._waiting), len(self._idle), self._pool_size))

            self._pump = traced_pump

        Engine.__init__ = init
        try:
            return await orig_run()
        finally:
            Engine.__init__ = orig_init

    def timed(obj, name, kind):
        fn = getattr(obj, name)

        def wrapper(*a, **kw):
            t0 = mono()
            try:
                return fn(*a, **kw)
            finally:
                ev[kind].append((t0, mono(), 0))

        setattr(obj, name, wrapper)

    session.run = run_traced
    progress = None
    if not args.no_progress:
        from rich.console import Console

        progress = Progress(label="lagtrace", duration=args.seconds,
                            console=Console(file=open(os.devnull, "w"), force_terminal=args.terminal))
        timed(progress, "update", "progress")
    if args.no_gc:
        gc.disable()
    load0 = os.getloadavg()
    sampler = RunQueueSampler(sched_fd, server_pid)
    with host_probe(args.seconds + 30) as probe:  # the host's slow windows (harness/traffic/hostspeed.py)
        results = run_standalone(session, progress)
    sampler.stop.set()
    sampler.thread.join()
    load1 = os.getloadavg()
    gc.callbacks.remove(on_gc)
    table, _ = read_requests_table(work)
    sched = table.column("scheduled_ns").to_numpy()
    sent = table.column("sent_ns").to_numpy()
    ok = sent >= 0
    lag = (sent[ok] - sched[ok]) / 1e6
    late_ms = args.late_ms
    from harness.traffic import connections

    print(f"# lagtrace: {args.rate:g} req/s x {args.seconds:g} s, path "
          f"{'compiled' if connections.HOTPATH is not None else 'pure Python'}, timer "
          f"{'precise' if getattr(engine_mod, 'PRECISE_TIMER', False) else 'loop'}; "
          f"load average {load0[0]:.2f} -> {load1[0]:.2f}")
    print(f"records {len(sched):,} (sent {int(ok.sum()):,}, rows by engine {results[0].rows:,}); send lag ms "
          f"p50 {np.percentile(lag, 50):.3f} p90 {np.percentile(lag, 90):.3f} p99 {np.percentile(lag, 99):.3f} "
          f"p99.9 {np.percentile(lag, 99.9):.3f} max {lag.max():.3f}; over {late_ms} ms: {(lag > late_ms).sum():,}")
    print(probe.describe())
    for start, end, speed in probe.windows:
        print(f"  host window {start / 1e9:.3f}-{end / 1e9:.3f} s CLOCK_MONOTONIC ({speed:.0%} speed)")
    for kind, items in ev.items():
        d = np.array([(b - a) / 1e6 for a, b, _ in items]) if items else np.zeros(1)
        extra = ""
        if kind == "gc":
            extra = "  by generation " + str(collections.Counter(g for _, _, g in items))
        print(f"  {kind:9s} n={len(items):6,}  ms p50 {np.percentile(d, 50):.3f}  max {d.max():.3f}  "
              f"total {d.sum():.1f}{extra}")
    # the late requests, by the wake-up that sent them
    w = np.array(wakes, dtype=np.int64) if wakes else np.zeros((0, 4), dtype=np.int64)
    lateness = (w[:, 1] - w[:, 0]) / 1e6
    print(f"pump wake-ups with something due: {len(w):,}; lateness ms p50 {np.percentile(lateness, 50):.3f} "
          f"p99 {np.percentile(lateness, 99):.3f} max {lateness.max():.3f}")
    abs_sched = sched[ok] + anchor
    abs_sent = sent[ok] + anchor
    buckets: dict[str, list[float]] = {}
    late_idx = np.nonzero(lag > late_ms)[0]
    # the event windows, as arrays for an overlap test
    windows = {k: np.array([(a, b) for a, b, _ in v], dtype=np.int64).reshape(-1, 2) for k, v in ev.items()}
    wake_entries = w[:, 1]
    seqs = table.column("seq").to_numpy()[ok]
    eng_wait, srv_wait = sampler.waits(abs_sched[late_idx].astype(np.float64), abs_sent[late_idx].astype(np.float64))
    wait_of = {int(i): (e, v) for i, e, v in zip(late_idx, eng_wait, srv_wait)}
    touched = ~outside_host_windows(abs_sched, abs_sent, probe.windows)
    if (~touched).any():
        print(f"send lag of the requests the host's slow windows did not touch ({(~touched).mean():.1%} of them): "
              f"p99 {np.percentile(lag[~touched], 99):.3f} ms, max {lag[~touched].max():.3f} ms")
    for i in late_idx:
        s0, s1 = abs_sched[i], abs_sent[i]
        span = max(s1 - s0, 1)
        if touched[i]:
            buckets.setdefault("the host ran this machine slowly (a harness/traffic/hostspeed.py window, or catching up after it)",
                               []).append(float(lag[i]))
            continue
        cause, best = None, 0
        for kind, win in windows.items():  # our own work inside the request's wait
            if len(win):
                cover = int(np.clip(np.minimum(win[:, 1], s1) - np.maximum(win[:, 0], s0), 0, None).sum())
                if cover > best:
                    cause, best = kind, cover
        if best < 0.3 * span:
            e_wait, s_wait = wait_of[int(i)]
            if e_wait > 0.3 * span:
                cause = "the engine waited for a CPU (run queue)"
            elif s_wait > 0.3 * span:
                cause = "the server waited for a CPU (run queue): answers late, pool busy"
            elif int(seqs[i]) in waited:
                cause = "waited for a free connection (pool busy), neither waited for a CPU"
            else:
                cause = "timer / loop (no work of ours, thread not waiting for a CPU)"
        buckets.setdefault(cause, []).append(float(lag[i]))
    # the worst pump wake-ups: what the engine and the server were doing meanwhile, and our work nearby
    print("the 5 latest pump wake-ups (target -> entry), with both processes' time split over that span:")
    for k in np.argsort(-(w[:, 1] - w[:, 0]))[:5]:
        t0, t1 = int(w[k, 0]), int(w[k, 1])
        near = [f"{kind} {(b - a) / 1e6:.2f} ms at {(a - t0) / 1e6:+.1f}" for kind, items in ev.items()
                for a, b, _ in items if a < t1 and b > t0 - 2_000_000]
        print(f"  +{(t0 - abs_sched[0]) / 1e9:6.3f} s late {(t1 - t0) / 1e6:6.2f} ms: {sampler.split(t0, t1)}"
              f"{'; ' + ', '.join(near) if near else ''}")
    # the request that waited longest: the pool while it waited
    if len(late_idx):
        worst = late_idx[np.argmax(lag[late_idx])]
        s0, s1 = int(abs_sched[worst]), int(abs_sent[worst])
        snaps = [p for p in pool if s0 - 1_000_000 <= p[0] <= s1]
        step = max(1, len(snaps) // 12)
        print(f"the latest request (seq {int(seqs[worst])}, {lag[worst]:.2f} ms, CLOCK_MONOTONIC {s0 / 1e9:.6f}-"
              f"{s1 / 1e9:.6f} s): {sampler.split(s0, s1)}; "
              "after each pump (ms from its schedule: in flight, waiting, idle, pool):")
        print("   " + "  ".join(f"{(t - s0) / 1e6:+.1f}: {a},{b},{c},{d}" for t, a, b, c, d in snaps[::step]))
    if len(late_idx):
        import collections as _c

        st = _c.Counter(n for t, n in sampler.stacks if s0 <= t <= s1)
        print("  the engine thread's Python stack meanwhile (1 ms samples):")
        for n, c in st.most_common(8):
            print(f"    {c:4d}  {n[:160]}")
    print(f"requests sent later than {late_ms} ms after their schedule, by cause:")
    for cause, lags in sorted(buckets.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(lags):6,}  max {max(lags):7.3f} ms  {cause}")
    if len(sched):
        first = int(np.argmax(lag > late_ms)) if (lag > late_ms).any() else -1
        t_rel = (abs_sched[late_idx] - abs_sched[0]) / 1e9 if len(late_idx) else np.zeros(0)
        print(f"late requests by second of the run: "
              f"{np.histogram(t_rel, bins=int(args.seconds) or 1, range=(0, args.seconds))[0].tolist()}"
              f"; first late seq index {first}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
