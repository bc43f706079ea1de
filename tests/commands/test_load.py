"""`rollout-harness load`: the run dir it writes, its exit codes, workers, and
Ctrl-C / SIGKILL leaving readable records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.model.requests import read_requests
from tests.traffic import servers

KEYS = {"total", "failed", "outcomes", "achieved_rate", "dropped", "send_lag_ms", "latency_ms"}


def test_load_writes_summary_with_the_documented_keys(tmp_path, server_factory, capsys):
    srv = server_factory(servers.answer(servers.RESPONSE_OK))
    for attempt in (1, 2):  # exit 3 = the engine fell behind (a busy machine): once more, then fail with why
        out = tmp_path / f"run-{attempt}"
        rc = main(["load", srv.url, "--rate", "100", "--duration", "0.5", "--new-connection-ratio", "0.5",
                   "--out", str(out)])
        if rc != 3:
            break
    generator = json.loads((out / "manifest.json").read_text())["generator"]
    assert rc == 0, f"exit {rc} twice; the engine fell behind: {generator}"
    assert generator["fell_behind"] is False and generator["asked_rate"] == 100
    assert set(generator["host"]) == {"probed_s", "slow_share", "windows"}  # the host speed probe ran beside it
    summary = json.loads((out / "summary.json").read_text())
    assert KEYS <= summary.keys()
    assert summary["total"] == 50 and summary["outcomes"] == {"ok": 50}
    assert set(summary["send_lag_ms"]) == {"p50", "p99", "max"}
    assert set(summary["latency_ms"]) == {"p50", "p90", "p99", "max"}
    assert "run dir" in capsys.readouterr().out


@pytest.mark.slow
def test_the_host_speed_is_probed_while_the_traffic_runs_and_the_probe_is_gone_after(tmp_path, server_factory):
    srv = server_factory(servers.answer(servers.RESPONSE_OK))
    out = tmp_path / "run"
    main(["load", srv.url, "--rate", "50", "--duration", "3", "--out", str(out)])
    host = json.loads((out / "manifest.json").read_text())["generator"]["host"]
    assert 0 < host["probed_s"] <= 3.5 + 5  # it sampled during the traffic and stopped with it
    assert 0 <= host["slow_share"] <= 1
    for w in host["windows"]:  # on the run clock, inside the traffic
        assert 0 <= w["start_ns"] < w["end_ns"] and 0 < w["speed"] < 0.5
    probes = subprocess.run(["pgrep", "-f", "harness.traffic.hostspeed"], capture_output=True, text=True).stdout
    assert not [p for p in probes.split() if _parent(int(p)) == os.getpid()]  # no probe of ours is left


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return -1


@pytest.mark.slow
def test_workers_merge_into_one_schedule(tmp_path, server_factory):
    srv = server_factory(servers.answer(servers.RESPONSE_OK))
    out = tmp_path / "run"
    main(["load", srv.url, "--rate", "200", "--duration", "0.5", "--workers", "2", "--out", str(out)])
    from harness.model.requests import read_requests

    df = read_requests(out)
    assert sorted(df.seq) == list(range(100))
    assert set(df.worker) == {0, 1}


@pytest.mark.parametrize("argv,needle", [
    (["load", "http://127.0.0.1:1/", "--rate", "-5", "--duration", "1"], "--rate"),
    (["load", "ftp://127.0.0.1/", "--rate", "5", "--duration", "1"], "only http://"),
    (["load", "http://127.0.0.1:1/", "--rate", "5", "--duration", "0"], "--duration"),
    (["load", "http://127.0.0.1:1/", "--rate", "5", "--duration", "1", "-H", "nocolon"], "--header"),
], ids=["negative-rate", "scheme", "zero-duration", "bad-header"])
def test_bad_arguments_exit_2_and_create_nothing(tmp_path, capsys, argv, needle):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        sys.exit(main(argv + ["--out", str(out)]))
    assert exc.value.code == 2
    assert needle in capsys.readouterr().err
    assert not out.exists()


def test_an_engine_behind_its_schedule_makes_the_load_inconclusive(tmp_path, server_factory, capsys):
    """Send lag is never exactly zero (the timer wakes after the due time), so a
    0 ms limit is always exceeded: exit 3, and the manifest says why."""
    srv = server_factory(servers.answer(servers.RESPONSE_OK))
    out = tmp_path / "run"
    rc = main(["load", srv.url, "--rate", "100", "--duration", "0.3", "--max-lag-ms", "0", "--out", str(out)])
    generator = json.loads((out / "manifest.json").read_text())["generator"]
    assert rc == 3 and generator["fell_behind"] is True and generator["send_lag_ms"]["p99"] > 0
    assert "ENGINE FELL BEHIND" in capsys.readouterr().out


def _start_load(tmp_path, url, duration=60, workers=1):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "load", url, "--rate", "200", "--duration",
                             str(duration), "--workers", str(workers), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    req = out / "requests" / "worker-000.arrow"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until at least one batch is on disk
        if req.exists() and req.stat().st_size > 2000:
            break
        if proc.poll() is not None:
            pytest.fail(f"load exited early: {proc.communicate()}")
        time.sleep(0.1)
    return proc, out


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2], ids=["one-engine", "two-worker-processes"])
def test_ctrl_c_leaves_readable_records_and_summary(tmp_path, server_factory, workers):
    """Ctrl-C stops the schedule and lets requests in flight finish: every
    request has its record, none cut by the harness."""
    srv = server_factory(servers.answer(servers.RESPONSE_OK))
    proc, out = _start_load(tmp_path, srv.url, workers=workers)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    df = read_requests(out)
    assert len(df) > 0 and (df.outcome == "ok").all()
    assert set(df.worker) == set(range(workers))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["total"] == len(df)


@pytest.mark.slow
def test_sigkill_leaves_readable_records(tmp_path, server_factory):
    srv = server_factory(servers.answer(servers.RESPONSE_OK))
    proc, out = _start_load(tmp_path, srv.url)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    df = read_requests(out)
    assert len(df) > 0
