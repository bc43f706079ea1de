"""Probe result counting and probe timing, with fake time; the handlers
against a real loopback server."""

import asyncio

import pytest

from harness.model.scenario import HTTPGetAction, Probe
from harness.platforms.local.probes import ProbeKind, ProbeState, http_get, next_probe_at, tcp_socket

S = 1_000_000_000


def probe(**kw) -> Probe:
    return Probe(http_get=HTTPGetAction(path="/ready"), **kw)


COUNTING = [
    # id, kind, probe settings, results fed, transitions expected after each
    ("readiness-starts-not-ready", ProbeKind.READINESS, {}, [False, False], [None, None]),
    ("readiness-one-success", ProbeKind.READINESS, {}, [True], [True]),
    ("readiness-success-threshold-2", ProbeKind.READINESS, {"success_threshold": 2}, [True, True], [None, True]),
    ("readiness-success-run-broken", ProbeKind.READINESS, {"success_threshold": 2},
     [True, False, True, True], [None, None, None, True]),
    ("readiness-failure-threshold-3", ProbeKind.READINESS, {"failure_threshold": 3},
     [True, False, False, False], [True, None, None, False]),
    ("readiness-flap-below-threshold", ProbeKind.READINESS, {"failure_threshold": 2},
     [True, False, True, False, True], [True, None, None, None, None]),
    ("liveness-starts-alive", ProbeKind.LIVENESS, {"failure_threshold": 2}, [True, False, False], [None, None, False]),
    ("startup-succeeds-once", ProbeKind.STARTUP, {}, [False, True], [None, True]),
    ("startup-gives-up", ProbeKind.STARTUP, {"failure_threshold": 2}, [False, False], [None, False]),
]


@pytest.mark.parametrize("kind,settings,results,expected", [c[1:] for c in COUNTING], ids=[c[0] for c in COUNTING])
def test_probe_result_counting(kind, settings, results, expected):
    state = ProbeState(kind, probe(**settings))
    assert [state.record(r) for r in results] == expected


def test_consecutive_failures_are_counted_for_the_event_detail():
    state = ProbeState(ProbeKind.READINESS, probe(failure_threshold=5))
    for _ in range(3):
        state.record(False)
    assert state.consecutive_failures == 3
    state.record(True)
    assert state.consecutive_failures == 0


TIMING = [
    # id, started, now, initialDelay, period, expected next probe
    ("first-tick-at-start", 0, 0, 0, 1, 0),
    ("next-tick", 0, 1, 0, 1, 1 * S),
    ("between-ticks", 0, int(2.5 * S), 0, 1, 3 * S),
    ("initial-delay-on-a-tick", 0, 0, 2, 1, 2 * S),
    ("initial-delay-between-ticks", 0, 0, 2.5, 1, 3 * S),
    ("grid-from-container-start", 7 * S, 8 * S + 1, 0, 0.5, int(8.5 * S)),
    ("long-period", 0, 1, 0, 10, 10 * S),
]


@pytest.mark.parametrize("started,now,delay,period,expected", [c[1:] for c in TIMING], ids=[c[0] for c in TIMING])
def test_next_probe_at(started, now, delay, period, expected):
    assert next_probe_at(started, now, probe(initial_delay_seconds=delay, period_seconds=period)) == expected


async def _serve(status: int):
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.parametrize("status,ok", [(200, True), (302, True), (503, False), (404, False)],
                         ids=["200", "302", "503", "404"])
def test_http_get_success_is_2xx_or_3xx(status, ok):
    async def main():
        server = await _serve(status)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await http_get("127.0.0.1", port, HTTPGetAction(path="/ready"), 2.0)

    result, reason = asyncio.run(main())
    assert result is ok and str(status) in reason


def test_probes_to_a_closed_port_fail_as_refused():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        ok_http, why_http = asyncio.run(http_get("127.0.0.1", port, HTTPGetAction(), 2.0))
        ok_tcp, why_tcp = asyncio.run(tcp_socket("127.0.0.1", port, 2.0))
    assert not ok_http and "ConnectionRefused" in why_http
    assert not ok_tcp and "ConnectionRefused" in why_tcp
