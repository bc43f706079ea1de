"""The proxy's access log -> records on the run clock (Traefik's JSON fields)."""

from __future__ import annotations

import json

import pytest

from harness.model.ingresslog import parse_line, parse_lines, proxy_errors, read_access_log, upstream_of, wall_ns

ANCHOR = 1_700_000_000 * 10**9  # the run's wall anchor (2023-11-14T22:13:20Z)


def line(**over) -> str:
    entry = {
        "ClientAddr": "127.0.0.1:51234", "DownstreamStatus": 502, "OriginStatus": 0,
        "Duration": 1_500_000, "OriginDuration": 900_000, "Overhead": 600_000, "RequestMethod": "GET",
        "RequestPath": "/work", "RetryAttempts": 0, "RouterName": "app@file",
        "ServiceAddr": "127.0.0.1:40123", "ServiceName": "app@file", "ServiceURL": "http://127.0.0.1:40123",
        "StartUTC": "2023-11-14T22:13:21.123456789Z", "entryPointName": "web",
        "request_X-Request-Id": "17", "level": "info", "msg": "", "time": "2023-11-14T22:13:21Z",
    }
    entry.update(over)
    return json.dumps(entry)


@pytest.mark.parametrize("text,want", [
    ("2023-11-14T22:13:20Z", ANCHOR),
    ("2023-11-14T22:13:21.123456789Z", ANCHOR + 1_123_456_789),
    ("2023-11-14T22:13:21.5Z", ANCHOR + 1_500_000_000),
    ("2023-11-14T23:13:20+01:00", ANCHOR),
], ids=["whole-second", "nanoseconds", "short-fraction", "offset"])
def test_wall_ns_keeps_nanoseconds(text, want):
    assert wall_ns(text) == want


def test_wall_ns_rejects_other_text():
    with pytest.raises(ValueError):
        wall_ns("yesterday")


def test_a_proxy_502_names_its_upstream_on_the_run_clock():
    r = parse_line(line(), ANCHOR)
    assert r == {"seq": 17, "start_ns": 1_123_456_789, "end_ns": 1_123_456_789 + 1_500_000, "status": 502,
                 "origin_status": 0, "upstream": "127.0.0.1:40123", "origin_duration_ns": 900_000, "retries": 0}


def test_no_server_has_no_upstream():
    r = parse_line(line(DownstreamStatus=503, ServiceAddr="", ServiceURL=""), ANCHOR)
    assert r is not None and r["upstream"] == "" and r["status"] == 503


def test_upstream_falls_back_to_the_service_url():
    assert upstream_of("http://10.0.0.7:8080", "") == "10.0.0.7:8080"
    assert upstream_of("", "") == ""


@pytest.mark.parametrize("text", [
    '{"level":"debug","msg":"Configuration received"}',  # not an access-log entry
    line(**{"request_X-Request-Id": None}),              # a request the engine did not send (a probe)
    line()[:40],                                          # torn last line
    "not json",
], ids=["other-log-line", "no-request-id", "torn", "garbage"])
def test_lines_that_are_not_engine_requests_are_skipped(text):
    assert parse_line(text, ANCHOR) is None


def test_parse_lines_and_read_from_the_run_dir(tmp_path):
    assert read_access_log(tmp_path, ANCHOR) is None  # no ingress in this run
    d = tmp_path / "ingress"
    d.mkdir()
    (d / "access.log").write_text("\n".join([line(), line(**{"request_X-Request-Id": "18", "DownstreamStatus": 200,
                                                            "RetryAttempts": 1}), "{"]) + "\n")
    recs = read_access_log(tmp_path, ANCHOR)
    assert [(r["seq"], r["status"], r["retries"]) for r in recs] == [(17, 502, 0), (18, 200, 1)]
    assert parse_lines([], ANCHOR) == []


def test_proxy_errors_are_counted_with_addresses_stripped(tmp_path):
    d = tmp_path / "ingress"
    d.mkdir()
    entries = [
        {"level": "debug", "error": "dial tcp 127.0.0.1:40123: connect: connection refused", "message": "502 Bad Gateway"},
        {"level": "debug", "error": "dial tcp 127.0.0.1:40999: connect: connection refused", "message": "502 Bad Gateway"},
        {"level": "debug", "error": "EOF", "message": "502 Bad Gateway"},
        {"level": "error", "error": "something else", "message": "provider error"},
    ]
    (d / "traefik.log").write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    assert proxy_errors(tmp_path) == {"dial tcp ADDR: connect: connection refused": 2, "EOF": 1}


def test_retries_are_counted_from_the_proxy_log(tmp_path):
    from harness.model.ingresslog import retry_attempts

    assert retry_attempts(tmp_path) == 0
    (tmp_path / "ingress").mkdir()
    (tmp_path / "ingress" / "traefik.log").write_text(
        '{"level":"debug","middlewareType":"Retry","message":"New attempt 2 for request: /work"}\n'
        '{"level":"debug","message":"Service selected by WRR: http://127.0.0.1:1"}\n'
        '{"level":"debug","middlewareType":"Retry","message":"New attempt 3 for request: /work"}\n')
    assert retry_attempts(tmp_path) == 2
