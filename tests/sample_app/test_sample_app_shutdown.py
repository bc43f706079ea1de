"""The sample app's stop sequence as a client sees it: FIN or RST, Connection:
close, in-flight requests finished or dropped, and the lifecycle log."""

from __future__ import annotations

import json
import signal

import pytest

LIFECYCLE = ["starting", "listening", "ready", "sigterm_received", "draining",
             "listener_closed", "inflight_drained", "exiting"]


def _start_inflight(app, ms: int):
    """A slow request on its own keep-alive connection, known to be inside the
    app: the app reads connections in arrival order, so once a later request on
    another connection is answered, this one is being worked on."""
    sock = app.connect()
    app.send(sock, f"/work?ms={ms}")
    assert app.get("/healthz")[0] == 200
    return sock


def _idle_keepalive(app):
    sock = app.connect()
    status, headers, _ = app.get("/work?ms=0", sock)
    assert status == 200 and "connection" not in headers
    return sock


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_lifecycle_log_lines_are_json_with_every_step(start_app, sig):
    app = start_app(POD_NAME="api-log", WARMUP_SECONDS="0.1")
    app.wait_event("ready")
    app.signal(sig)
    assert app.wait_exit() == 0
    events = app.events()
    assert [e["event"] for e in events] == LIFECYCLE
    for e in events:
        assert isinstance(e["ts"], float) and e["pod"] == "api-log"
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    assert events[3]["signal"] == sig.name
    assert events[-1]["code"] == 0
    for line in app.lines:  # stdout carries nothing but the JSON lines
        json.loads(line)


@pytest.mark.slow
def test_polite_shutdown_finishes_inflight_with_connection_close_and_fins_idle(start_app):
    app = start_app(KEEPALIVE_CLOSE="polite", DRAIN_SECONDS="0")
    idle = _idle_keepalive(app)
    busy = _start_inflight(app, 1500)
    app.signal(signal.SIGTERM)
    closed = app.wait_event("listener_closed")
    assert closed["inflight"] == 1
    assert idle.recv(1024) == b""  # FIN: a clean end of stream, not a reset
    status, headers, body = app.read_response(busy)
    assert status == 200 and json.loads(body)["ms"] == 1500
    assert headers["connection"] == "close"
    assert busy.recv(1024) == b""
    assert app.wait_exit() == 0
    drained = app.wait_event("inflight_drained")
    assert drained["still_open"] == 0 and drained["timed_out"] is False


@pytest.mark.slow
def test_abrupt_resets_idle_keepalive_connection(start_app):
    app = start_app(KEEPALIVE_CLOSE="abrupt", DRAIN_SECONDS="0")
    idle = _idle_keepalive(app)
    app.signal(signal.SIGTERM)
    app.wait_event("listener_closed")
    with pytest.raises(ConnectionResetError):
        data = idle.recv(1024)
        # a FIN would give b"" here; anything but a reset fails the test
        raise AssertionError(f"expected a reset, got {data!r}")
    assert app.wait_exit() == 0


def test_abrupt_sends_no_connection_close_while_draining(start_app):
    app = start_app(KEEPALIVE_CLOSE="abrupt", DRAIN_SECONDS="600")
    sock = _idle_keepalive(app)
    app.signal(signal.SIGTERM)
    app.wait_event("draining")
    status, headers, _ = app.get("/work?ms=0", sock)
    assert status == 200 and "connection" not in headers


@pytest.mark.slow
def test_graceful_off_drops_the_inflight_request(start_app):
    app = start_app(GRACEFUL_SHUTDOWN="false")
    busy = _start_inflight(app, 5000)
    app.signal(signal.SIGTERM)
    assert app.wait_exit() == 128 + signal.SIGTERM
    try:
        data = busy.recv(1024)
    except ConnectionResetError:
        data = b"reset"
    assert data in (b"", b"reset")  # closed or reset, never a response
    exiting = app.wait_event("exiting")
    assert exiting["graceful"] is False and exiting["inflight"] == 1
    assert "listener_closed" not in [e["event"] for e in app.events()]


@pytest.mark.slow
def test_shutdown_timeout_gives_up_on_a_long_request(start_app):
    app = start_app(SHUTDOWN_TIMEOUT="0.3")
    _busy = _start_inflight(app, 60000)
    app.signal(signal.SIGTERM)
    assert app.wait_exit() == 0
    drained = app.wait_event("inflight_drained")
    assert drained["still_open"] == 1 and drained["timed_out"] is True


def test_sigterm_during_startup_delay_exits_without_listening(start_app):
    app = start_app(wait_listening=False, STARTUP_DELAY="600")
    app.wait_event("starting")
    app.signal(signal.SIGTERM)
    assert app.wait_exit() == 0
    assert [e["event"] for e in app.events()] == ["starting", "sigterm_received", "exiting"]
