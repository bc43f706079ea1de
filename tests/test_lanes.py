"""run --repeat runs each lane in a process (and session) of its own
(harness/lanes.py): Ctrl-C still ends every lane through its teardown and
leaves a readable series dir, and a killed harness still takes the lanes
and their replicas with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.model.events import read_events
from tests.test_runner import alive, replica_pids, wait_dead

ROOT = Path(__file__).resolve().parents[1]


def _start_series(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / "series"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(ROOT / "scenarios/best-practice.yaml"),
                             "--out", str(out), "-q", "--repeat", "4", "--lanes", "2",
                             "--set", "disruption.baselineSeconds=60", "--set", "app.env.WARMUP_SECONDS=0.5",
                             "--set", "traffic.rate=100"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until both lanes' first rollouts have traffic
        firsts = [out / "rollout-01", out / "rollout-02"]
        if all(d.exists() and any(e["kind"] == "phase" for e in read_events(d))
               and list((d / "requests").glob("*.arrow")) for d in firsts):
            return proc, out
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    proc.kill()
    pytest.fail(f"the series did not start: {proc.communicate()[1][-2000:]}")


def _replicas(out: Path) -> list[int]:
    """Every replica of every lane (pids that know their pod's port: tests.test_runner.Replica)."""
    return [r for lane in sorted(out.glob("lane-*")) for r in replica_pids(lane)]


@pytest.mark.slow
def test_ctrl_c_ends_every_lane_and_leaves_a_readable_series(tmp_path):
    proc, out = _start_series(tmp_path)
    pids = _replicas(out)
    try:
        assert len(pids) >= 8 and any(alive(p) for p in pids)  # (a container restarted by its probe adds one)
    except AssertionError:
        proc.send_signal(signal.SIGINT)
        raise
    proc.send_signal(signal.SIGINT)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + err
    assert not wait_dead(pids, timeout=10)
    meta = json.loads((out / "series.json").read_text())
    assert meta["status"] == "interrupted"
    for d in (out / "rollout-01", out / "rollout-02"):
        assert json.loads((d / "manifest.json").read_text())["status"] == "interrupted"
    assert not (out / "rollout-03").exists() and not (out / "rollout-04").exists()
    assert [r["status"] for r in meta["rollouts"]][2:] == ["inconclusive", "inconclusive"]


@pytest.mark.slow
def test_a_killed_harness_takes_its_lanes_and_their_replicas_with_it(tmp_path):
    proc, out = _start_series(tmp_path)
    pids = _replicas(out)
    lanes = [int(p) for p in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                            text=True).stdout.split()]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)  # (its pipes stay open until the lanes have torn down)
    assert len(pids) >= 8 and len(lanes) >= 3  # two lanes and a report process at least
    assert not wait_dead(pids, timeout=30), "replicas outlived a SIGKILLed harness"
    assert not wait_dead(lanes, timeout=30), "lane or report processes outlived a SIGKILLed harness"
    # each lane ended its rollout through the teardown: the run dirs say so
    for d in (out / "rollout-01", out / "rollout-02"):
        assert json.loads((d / "manifest.json").read_text())["status"] == "interrupted"
