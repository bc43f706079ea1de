"""The classification table: each outcome reproduced by a real socket failure
against a tiny local server, run through the real engine; plus the pure
function on the exceptions those failures raise."""

from __future__ import annotations

import errno
import socket

import pytest

from harness.model.outcome import Outcome
from harness.traffic.classify import classify_error, normalise_error
from tests.traffic import servers
from tests.traffic.helpers import run_engine

CASES = [
    # id, server behaviour, engine settings, expected outcome, expected errno
    ("ok", servers.answer(servers.RESPONSE_OK), {}, Outcome.OK, 0),
    ("http_502", servers.answer(servers.status_response(502)), {}, Outcome.HTTP_502, 0),
    ("http_503", servers.answer(servers.status_response(503)), {}, Outcome.HTTP_503, 0),
    ("http_504", servers.answer(servers.status_response(504)), {}, Outcome.HTTP_504, 0),
    ("http_500", servers.answer(servers.status_response(500)), {}, Outcome.HTTP_5XX, 0),
    ("http_404", servers.answer(servers.status_response(404)), {}, Outcome.HTTP_4XX, 0),
    ("reset_so_linger_0", servers.reset_after_request, {}, Outcome.RESET, errno.ECONNRESET),
    ("closed_after_request", servers.close_after_request, {}, Outcome.CLOSED, 0),
    ("closed_mid_response", servers.close_after_partial, {}, Outcome.CLOSED, 0),
    ("read_timeout", servers.never_answer, {"read_timeout": 0.3}, Outcome.READ_TIMEOUT, errno.ETIMEDOUT),
    ("malformed_response", servers.garbage, {}, Outcome.OTHER, 0),
]


@pytest.mark.parametrize("behave,settings,expected,expected_errno",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("new_connection_ratio", [0.0, 1.0], ids=["keepalive", "new-conn"])
def test_real_failure_is_classified(tmp_path, server_factory, behave, settings, expected, expected_errno,
                                    new_connection_ratio):
    srv = server_factory(behave)
    _, df = run_engine(tmp_path, srv.url, rate=20, duration=0.2, new_connection_ratio=new_connection_ratio,
                       **settings)
    assert len(df) == 4  # 0.2 s at 20 req/s: seqs 0..3, every one recorded
    assert set(df.outcome.astype(str)) == {expected.value}
    assert set(df.errno) == {expected_errno}
    if expected is Outcome.OK:
        assert set(df.pod) == {"pod-a"} and set(df.status) == {200}
    else:
        assert df.error.notna().all() or expected.value.startswith("http_")


def test_nothing_listening_is_refused(tmp_path):
    _, df = run_engine(tmp_path, f"http://127.0.0.1:{servers.free_port()}/", rate=20, duration=0.2)
    assert list(df.outcome.astype(str)) == ["refused"] * 4
    assert set(df.errno) == {errno.ECONNREFUSED}
    assert not df.conn_reused.any()


def test_full_accept_queue_is_connect_timeout(tmp_path, server_factory):
    # A listener that never accepts, its backlog filled: the SYN is dropped.
    srv = server_factory(None, backlog=0, accept=False)
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", srv.port))
        fillers.append(s)
    try:
        _, df = run_engine(tmp_path, srv.url, rate=10, duration=0.1, connect_timeout=0.3, new_connection_ratio=1.0)
    finally:
        for s in fillers:
            s.close()
    assert list(df.outcome.astype(str)) == ["connect_timeout"]


def test_in_flight_cap_records_dropped_not_delayed(tmp_path, server_factory):
    srv = server_factory(servers.never_answer)
    _, df = run_engine(tmp_path, srv.url, rate=100, duration=0.2, connections=1, max_inflight=2, read_timeout=0.5)
    counts = df.outcome.astype(str).value_counts().to_dict()
    assert counts["dropped"] >= 15  # 20 due, at most 1 in flight + 1 waiting at a time
    dropped = df[df.outcome == "dropped"]
    assert (dropped.sent_ns == -1).all()  # never sent
    assert len(df) == 20


def test_keepalive_connection_is_reused_and_carries_pod(tmp_path, server_factory):
    srv = server_factory(servers.answer(servers.RESPONSE_OK))
    _, df = run_engine(tmp_path, srv.url, rate=50, duration=0.4, connections=1)
    assert df.conn_id.nunique() == 1
    assert list(df.conn_reused) == [False] + [True] * (len(df) - 1)
    assert (df.sent_ns >= df.scheduled_ns).all() and (df.ended_ns >= df.sent_ns).all()


@pytest.mark.parametrize("exc,stage,expected", [
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "connect", Outcome.REFUSED),
    (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), "read", Outcome.RESET),
    (BrokenPipeError(errno.EPIPE, "Broken pipe"), "send", Outcome.RESET),
    (TimeoutError(), "connect", Outcome.CONNECT_TIMEOUT),
    (TimeoutError(), "read", Outcome.READ_TIMEOUT),
    (None, "read", Outcome.CLOSED),
    (OSError(errno.EHOSTUNREACH, "No route to host"), "connect", Outcome.OTHER),
    (ValueError("malformed"), "read", Outcome.OTHER),
], ids=["refused", "reset", "epipe", "connect-timeout", "read-timeout", "eof", "unreachable", "protocol"])
def test_classify_error_pure(exc, stage, expected):
    outcome, _, text = classify_error(exc, stage)
    assert outcome is expected
    assert text


def test_error_text_is_normalised_without_addresses():
    a = normalise_error("Connect call failed ('127.0.0.1', 43211)")
    b = normalise_error("Connect call failed ('127.0.0.1', 51234)")
    assert a == b and "127.0.0.1" not in a


def _ok_then_close(conn):
    servers.read_request(conn)
    conn.sendall(servers.RESPONSE_OK)
    servers.read_request(conn)
    conn.close()


def test_status_of_a_cut_response_is_its_own_never_the_previous_ones(tmp_path, server_factory):
    partial = server_factory(servers.close_after_partial)
    _, df = run_engine(tmp_path / "a", partial.url, rate=20, duration=0.05)
    assert list(df.outcome.astype(str)) == ["closed"] and list(df.status) == [200]  # headers of 200 arrived
    reused = server_factory(_ok_then_close)
    _, df = run_engine(tmp_path / "b", reused.url, rate=20, duration=0.1, connections=1)  # 2 requests, 1 connection
    assert list(df.outcome.astype(str)) == ["ok", "closed"]
    assert list(df.status) == [200, 0] and list(df.conn_reused) == [False, True]
