"""Did the host run this machine at full speed while the traffic ran?

A virtual machine's host can run all its vCPUs slowly for a while (a busy
or throttled host: noisy neighbours, CPU credits, power capping) without the
guest being told: the steal time does not move. Found on the project's own
machine, a 2-vCPU VM: a few times every few seconds, for 10-100 ms, both
vCPUs ran at about a fifth of their speed at the same instant (a C loop at
the top real-time priority slowed alike; docs/engine.md). Inside such a
window every process needs ~5x the CPU per request, so the engine falls
behind its schedule there, as any generator would. When a run comes out
inconclusive because the engine fell behind, these windows say whether the
host, not the harness or the target, was the cause.

The probe: a small process (SCHED_FIFO 30 when allowed) wakes every
``PERIOD`` and times a fixed piece of pure-Python work three times; the
fastest of the three (an interrupt inflates one, a slow host all) is the
sample. A sample slower than ``1 / SLOW`` of the run's median marks the host
slow; ``MIN_SAMPLES`` in a row make a window. About 1% of one CPU. It stops
by itself after ``seconds``, when its parent is gone, or on SIGTERM.

    with HostSpeedProbe(seconds=600) as probe:
        ... traffic ...
    probe.section()  # the manifest's generator.host: windows, span, slow share
"""

from __future__ import annotations

import array
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.model.summary import HostSpeed

PERIOD = 0.002  # seconds between samples
SLOW = 0.5  # a sample at under half the median speed is a slow host
MIN_SAMPLES = 2  # a window is at least this many consecutive slow samples (one may be an SMI)
ENV_OFF = "ROLLOUT_HARNESS_HOST_PROBE"  # "0": no probe (the section says so)
CHUNK = 512  # samples the probe holds before it appends them to its file


def _work() -> int:
    s = 0
    for i in range(300):
        s += i
    return s


def sample(seconds: float, out: str) -> None:
    """The probe process: (monotonic ns, ns of the fastest of three runs of
    ``_work``) pairs appended to ``out`` (int64) every ``CHUNK`` samples, so a
    long run holds no more than that in memory, until ``seconds`` pass or
    SIGTERM; if its parent is gone, it removes ``out``'s directory (the
    probe's own) and stops."""
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the harness's to handle; it stops us after
    parent = os.getppid()
    mono = time.monotonic_ns
    buf = array.array("q")
    end = mono() + int(seconds * 1e9)
    with open(out, "wb") as f:
        print("ready", flush=True)
        while not stop:
            t0 = mono()
            if os.getppid() != parent:  # nobody will read the samples: leave nothing behind
                shutil.rmtree(Path(out).parent, ignore_errors=True)
                return
            if t0 >= end:
                break
            _work()
            t1 = mono()
            _work()
            t2 = mono()
            _work()
            t3 = mono()
            buf.extend((t0, min(t1 - t0, t2 - t1, t3 - t2)))
            if len(buf) >= 2 * CHUNK:
                buf.tofile(f)
                del buf[:]
            time.sleep(max(0.0, PERIOD - (t3 - t0) / 1e9))
        buf.tofile(f)


def windows_of(samples) -> tuple[list[tuple[int, int, float]], float, float]:
    """(windows [(start_ns, end_ns, speed)], the probed span in s, the share of
    it inside windows) from the probe's flat (time, duration) int64 samples."""
    import numpy as np

    flat = np.asarray(samples, dtype=np.int64)
    times, durs = flat[0::2], flat[1::2]
    if len(durs) < 10:
        return [], 0.0, 0.0
    normal = int(np.sort(durs)[len(durs) // 2])
    slow = np.concatenate(([False], durs * SLOW > normal, [False]))
    edges = np.flatnonzero(np.diff(slow.astype(np.int8)))  # run starts and ends, alternately
    out: list[tuple[int, int, float]] = []
    for first, stop in zip(edges[0::2], edges[1::2]):  # samples first..stop-1 are slow
        if stop - first < MIN_SAMPLES:
            continue
        speed = float(np.mean(normal / durs[first:stop]))
        end = times[stop] if stop < len(times) else times[stop - 1]
        out.append((int(times[first]), int(end), speed))
    span = (int(times[-1]) - int(times[0])) / 1e9
    slow_s = sum(b - a for a, b, _ in out) / 1e9
    return out, span, slow_s / span if span else 0.0


@functools.lru_cache(maxsize=1)
def can_run_realtime() -> bool:
    """Root with chrt, and allowed to use it (a container may not be)."""
    if os.geteuid() != 0 or not shutil.which("chrt"):
        return False
    return subprocess.run(["chrt", "-f", "30", "true"], capture_output=True).returncode == 0


class HostSpeedProbe:
    """Run the probe beside the traffic (a context manager). ``cpu``: pin it
    (the bench); ``wait_ready``: return from ``__enter__`` once it samples
    (the bench; the harness does not hold its event loop for it); ``enabled``
    None: unless ``ROLLOUT_HARNESS_HOST_PROBE=0``."""

    def __init__(self, seconds: float, *, cpu: int | None = None, wait_ready: bool = False,
                 enabled: bool | None = None):
        self.seconds = seconds
        self.cpu = cpu
        self.wait_ready = wait_ready
        self.windows: list[tuple[int, int, float]] = []
        self.span_s = 0.0
        self.slow_share = 0.0
        self.off = not enabled if enabled is not None else os.environ.get(ENV_OFF) == "0"
        self._dir: Path | None = None
        self._proc: subprocess.Popen | None = None

    def start(self) -> "HostSpeedProbe":
        if self.off:
            return self
        try:
            self._dir = Path(tempfile.mkdtemp(prefix="rollout-hostspeed-"))
        except OSError:  # no writable temp dir: no probe (the section says probed_s 0), never a failed run
            return self
        argv = [sys.executable, "-m", "harness.traffic.hostspeed", "--seconds", str(self.seconds),
                "--out", str(self._dir / "samples")]
        if self.cpu is not None and shutil.which("taskset") and (os.cpu_count() or 1) > self.cpu:
            argv = ["taskset", "-c", str(self.cpu)] + argv
        if can_run_realtime():
            argv = ["chrt", "-f", "30"] + argv  # above the bench's SCHED_FIFO 20: its samples are not delayed
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
        try:
            self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env)
        except OSError:
            self._proc = None
            return self
        if self.wait_ready:
            self._proc.stdout.readline()  # "ready": sampling has started
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        try:
            if proc is not None:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
            path = self._dir / "samples" if self._dir is not None else None
            if path is not None and path.exists():
                import numpy as np

                self.windows, self.span_s, self.slow_share = windows_of(np.fromfile(path, dtype=np.int64))
        finally:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "HostSpeedProbe":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def section(self, anchor_ns: int = 0) -> HostSpeed:
        """The manifest's ``generator.host`` (harness.model.summary.HostSpeed):
        windows in run-clock ns (``anchor_ns`` subtracted)."""
        return {"probed_s": round(self.span_s, 3), "slow_share": round(self.slow_share, 4),
                "windows": [{"start_ns": a - anchor_ns, "end_ns": b - anchor_ns, "speed": round(s, 3)}
                            for a, b, s in self.windows]}

    def describe(self) -> str:
        if self.off:
            return f"host speed not probed ({ENV_OFF}=0)"
        if not self.span_s:
            return "host speed: no samples"
        if not self.windows:
            return f"host steady over {self.span_s:.1f} s"
        ms = ", ".join(f"{(b - a) / 1e6:.0f} ms at {s:.0%}" for a, b, s in self.windows[:6])
        more = f", +{len(self.windows) - 6} more" if len(self.windows) > 6 else ""
        return (f"host slow {self.slow_share:.1%} of {self.span_s:.1f} s: {len(self.windows)} window(s), "
                f"{ms}{more}")


def host_fact(host: dict[str, Any] | None) -> str | None:
    """What the host did, when it ran this machine slowly while the traffic ran, else None."""
    if not host or not host.get("windows"):
        return None
    wins = host["windows"]
    speed = sum(w["speed"] for w in wins) / len(wins)
    longest = max(w["end_ns"] - w["start_ns"] for w in wins) / 1e6
    return (f"the host ran this machine at about {speed:.0%} of its speed for {host['slow_share']:.1%} of the "
            f"traffic ({len(wins)} window(s), the longest {longest:.0f} ms)")


def host_sentence(host: dict[str, Any] | None) -> str | None:
    """The reason a run that fell behind gives when the host ran slowly: the fact, and the fix."""
    fact = host_fact(host)
    if fact is None:
        return None
    return (f"{fact}: any generator falls behind there; run on a host that does not throttle its CPUs, "
            "or lower traffic.rate")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="sample this long, then stop")
    ap.add_argument("--out", help="the samples file (the probe process); without it: probe and print the windows")
    ap.add_argument("--cpu", type=int, default=None, help="pin the probe to this CPU")
    a = ap.parse_args()
    if a.out:
        sample(a.seconds, a.out)
    else:
        with HostSpeedProbe(a.seconds, cpu=a.cpu, wait_ready=True) as p:
            time.sleep(a.seconds)
        print(p.describe())
        for start, end, speed in p.windows:
            print(f"  {start / 1e9:.3f}-{end / 1e9:.3f} s CLOCK_MONOTONIC: {(end - start) / 1e6:.1f} ms at {speed:.0%}")
