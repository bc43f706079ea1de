"""The one app-log parser both platforms use: which lines become events, on
the run clock, with the precision of their timestamps (the clock contract)."""

from __future__ import annotations

import pytest

from harness.model.clock import RunClock
from harness.model.events import EventKind
from harness.platforms.applog import app_log_event, ts_precision_s

CLOCK = RunClock(monotonic_anchor_ns=0, wall_anchor_ns=1_764_131_400_000_000_000)


@pytest.mark.parametrize("line,precision", [
    ('{"ts":1764131400.071434,"pod":"api-1","event":"starting"}', 1e-6),
    ('{"ts": 1764131400.5, "event": "ready"}', 0.1),
    ('{"ts": 1764131400, "event": "ready"}', 1.0),
    ('{"event": "ready", "ts": 1764131400.123456789123}', 1e-9),
], ids=["sample-app-us", "tenths", "whole-seconds", "beyond-ns"])
def test_the_timestamp_keeps_its_source_precision(line, precision):
    ev = app_log_event(line, pod="p", from_wall_s=CLOCK.from_wall_s)
    assert ev.detail["precision_s"] == pytest.approx(precision) == ts_precision_s(line)


def test_a_sigterm_line_is_the_apps_shutdown_on_the_run_clock():
    ev = app_log_event('{"ts": 1764131402.5, "pod": "api-1", "event": "sigterm_received", "inflight": 3, '
                       '"kind": "spoof", "t_ns": 1}', pod="fallback", from_wall_s=CLOCK.from_wall_s)
    assert ev.t_ns == 2_500_000_000 and ev.pod == "api-1" and ev.kind is EventKind.APP_SHUTDOWN_STARTED
    assert ev.detail == {"inflight": 3, "event": "sigterm_received", "ts": 1764131402.5, "precision_s": 0.1}


def test_lines_that_are_not_events_are_skipped_and_the_pod_falls_back():
    assert app_log_event("INFO: Uvicorn running", pod="p", from_wall_s=CLOCK.from_wall_s) is None
    assert app_log_event('{"ts": true, "event": "x"}', pod="p", from_wall_s=CLOCK.from_wall_s) is None
    ev = app_log_event('{"ts": 1764131401, "event": "listener_closed"}', pod="p", from_wall_s=CLOCK.from_wall_s)
    assert ev.pod == "p" and ev.kind is EventKind.APP_LOG and ev.detail["event"] == "listener_closed"
