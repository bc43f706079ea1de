#!/usr/bin/env python3
"""Is the host running this machine at full speed? A probe for `make bench`.

Found on the project's machine (a 2-vCPU Firecracker VM, 2026-11-26): a few
times in a few seconds, for 10-90 ms, the host runs *both* vCPUs at about a
fifth of their speed. A C spin loop pinned to one vCPU at SCHED_FIFO 90 (no
task of this machine can preempt it) counts 20% of its usual iterations in
every 10 us slice of such a window, on both vCPUs at the same instant, while
the guest's steal time does not move. Inside a window every process needs
~5x the CPU per request (the engine, nginx, wrk alike), so a generator at
10k req/s falls behind by tens of milliseconds, and a round of a closed loop
that catches more windows than its twin reads 10-20% slower. Neither is the
engine's doing; both are measurable.

The probe: a small process at SCHED_FIFO (when root) on one CPU wakes every
``PERIOD`` and times a fixed piece of pure-Python work three times; the
fastest of the three (an interrupt inflates one, a slow host all) is the
sample. A sample slower than ``1 / SLOW`` of the run's median marks the host
slow; consecutive slow samples make a window. About 1% of one CPU.

    with HostProbe(seconds=15, cpu=0) as probe:
        ... run something ...
    probe.windows  # [(start_ns, end_ns, speed)], CLOCK_MONOTONIC
    probe.slow_share  # share of the probed time inside windows
"""

from __future__ import annotations

import array
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PERIOD = 0.002  # seconds between samples
SLOW = 0.5  # a sample at under half the median speed is a slow host
MIN_SAMPLES = 2  # a window is at least this many consecutive slow samples (one may be an SMI)


def _work() -> int:
    s = 0
    for i in range(300):
        s += i
    return s


def sample(seconds: float, out: str) -> None:
    """The probe process: (monotonic ns, ns of the fastest of three runs of
    ``_work``) pairs into ``out`` (int64), until ``seconds`` pass or SIGTERM."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    mono = time.monotonic_ns
    buf = array.array("q")
    end = mono() + int(seconds * 1e9)
    print("ready", flush=True)
    while not stop:
        t0 = mono()
        if t0 >= end:
            break
        _work()
        t1 = mono()
        _work()
        t2 = mono()
        _work()
        t3 = mono()
        buf.extend((t0, min(t1 - t0, t2 - t1, t3 - t2)))
        time.sleep(max(0.0, PERIOD - (t3 - t0) / 1e9))
    with open(out, "wb") as f:
        buf.tofile(f)


def windows_of(samples: array.array | list[int]) -> tuple[list[tuple[int, int, float]], float, float]:
    """(windows [(start_ns, end_ns, speed)], the probed span in s, the share of
    it inside windows) from the probe's flat (time, duration) samples."""
    times, durs = samples[0::2], samples[1::2]
    if len(durs) < 10:
        return [], 0.0, 0.0
    normal = sorted(durs)[len(durs) // 2]
    out: list[tuple[int, int, float]] = []
    run: list[int] = []
    for i, d in enumerate(list(durs) + [normal]):
        if d * SLOW > normal:
            run.append(i)
            continue
        if len(run) >= MIN_SAMPLES:
            speed = sum(normal / durs[j] for j in run) / len(run)
            end = times[run[-1] + 1] if run[-1] + 1 < len(times) else times[run[-1]]
            out.append((times[run[0]], end, speed))
        run = []
    span = (times[-1] - times[0]) / 1e9
    slow = sum(b - a for a, b, _ in out) / 1e9
    return out, span, slow / span if span else 0.0


def _can_run_realtime() -> bool:
    """Root with chrt, and allowed to use it (a container may not be)."""
    if os.geteuid() != 0 or not shutil.which("chrt"):
        return False
    return subprocess.run(["chrt", "-f", "30", "true"], capture_output=True).returncode == 0


class HostProbe:
    """Run the probe beside a measurement (a context manager; stops by itself
    after ``seconds``, or when the block ends)."""

    def __init__(self, seconds: float, cpu: int | None = 0):
        self.seconds = seconds
        self.cpu = cpu
        self.windows: list[tuple[int, int, float]] = []
        self.span_s = 0.0
        self.slow_share = 0.0
        self._dir = Path(tempfile.mkdtemp(prefix="rollout-hostprobe-"))
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> "HostProbe":
        argv = [sys.executable, __file__, "--seconds", str(self.seconds), "--out", str(self._dir / "samples")]
        if self.cpu is not None and shutil.which("taskset") and (os.cpu_count() or 1) > self.cpu:
            argv = ["taskset", "-c", str(self.cpu)] + argv
        if _can_run_realtime():
            argv = ["chrt", "-f", "30"] + argv  # above the bench's SCHED_FIFO 20: its samples are not delayed
        self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self._proc.stdout.readline()  # "ready": sampling has started
        return self

    def __exit__(self, *exc) -> None:
        proc = self._proc
        try:
            if proc is not None:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            path = self._dir / "samples"
            if path.exists():
                samples = array.array("q")
                samples.frombytes(path.read_bytes())
                self.windows, self.span_s, self.slow_share = windows_of(samples)
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def describe(self) -> str:
        if not self.span_s:
            return "host probe: no samples"
        if not self.windows:
            return f"host steady over {self.span_s:.1f} s"
        ms = ", ".join(f"{(b - a) / 1e6:.0f} ms at {s:.0%}" for a, b, s in self.windows[:6])
        more = f", +{len(self.windows) - 6} more" if len(self.windows) > 6 else ""
        return (f"host slow {self.slow_share:.1%} of {self.span_s:.1f} s: {len(self.windows)} window(s), "
                f"{ms}{more}")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="sample this long, then stop")
    ap.add_argument("--out", help="the samples file (the probe process); without it: probe and print the windows")
    ap.add_argument("--cpu", type=int, default=0)
    a = ap.parse_args()
    if a.out:
        sample(a.seconds, a.out)
    else:
        with HostProbe(a.seconds, cpu=a.cpu) as p:
            time.sleep(a.seconds)
        print(p.describe())
        for start, end, speed in p.windows:
            print(f"  {start / 1e9:.3f}-{end / 1e9:.3f} s CLOCK_MONOTONIC: {(end - start) / 1e6:.1f} ms at {speed:.0%}")
