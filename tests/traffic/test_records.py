"""Records stream to disk and stay readable after a crash or Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from harness.model.outcome import Outcome
from harness.model.requests import COLUMNS, RequestWriter, read_request_file, read_requests
from harness.platforms.base import Route
from tests.traffic import servers
from tests.traffic.helpers import run_engine


def _write(path, n_batches, rows=100):
    w = RequestWriter(path, worker=0)
    for b in range(n_batches):
        for i in range(rows):
            seq = b * rows + i
            w.add(seq, seq, seq + 1, seq + 2, 0, 200, 0, None, 1, i > 0, "pod-a", None)
        w.flush()
    return w


def test_round_trip_has_every_column(tmp_path):
    w = _write(tmp_path / "requests" / "worker-000.arrow", 3)
    w.close()
    df = read_requests(tmp_path)
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == 300 and list(df.seq[:3]) == [0, 1, 2]
    assert set(df.outcome.astype(str)) == {Outcome.OK.value}


def test_truncated_last_batch_is_skipped_not_fatal(tmp_path):
    path = tmp_path / "requests" / "worker-000.arrow"
    _write(path, 3)  # never closed: as after SIGKILL
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 500)  # tear the last batch
    table, complete = read_request_file(path)
    assert not complete
    assert table.num_rows == 200


def test_resolver_route_is_recorded_as_ground_truth(tmp_path, server_factory):
    srv = server_factory(servers.answer(servers.RESPONSE_OK))

    class OnePod:
        def pick(self):
            return Route("127.0.0.1", srv.port, "api-1")

    _, df = run_engine(tmp_path, "http://service.invalid:80/work", resolver=OnePod(), rate=40, duration=0.2,
                       new_connection_ratio=0.5)
    assert set(df.route_pod) == {"api-1"}
    assert set(df.pod) == {"pod-a"}


def test_no_ready_endpoint_is_refused(tmp_path):
    class Empty:
        def pick(self):
            return None

    _, df = run_engine(tmp_path, "http://service.invalid:80/", resolver=Empty(), rate=40, duration=0.2)
    assert set(df.outcome.astype(str)) == {"refused"} and len(df) == 8


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


def _split_response(conn):
    import time as _t

    while servers.read_request(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nx-pod-")
        _t.sleep(0.02)
        conn.sendall(b"name: pod-b\r\n\r\nok")


@pytest.mark.parametrize("behave,pod", [
    (servers.answer(b"HTTP/1.1 200 OK\r\nx-pod-name: pod-c\r\nContent-Length: 0\r\n\r\n"), "pod-c"),
    (servers.answer(b"HTTP/1.1 200 OK\r\nX-POD-NAME:pod-d \r\nContent-Length: 0\r\n\r\n"), "pod-d"),
    (servers.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nX-Pod-Name: x"), None),
    (_split_response, "pod-b"),
], ids=["lowercase", "uppercase-no-space", "only-in-body", "split-across-chunks"])
def test_pod_header_is_read_from_the_header_block(tmp_path, server_factory, behave, pod):
    srv = server_factory(behave)
    _, df = run_engine(tmp_path, srv.url, rate=20, duration=0.2, connections=1)
    assert (df.outcome == "ok").all()
    if pod is None:
        assert df.pod.isna().all()
    else:
        assert list(df.pod) == [pod] * 4
