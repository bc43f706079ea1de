"""The engine's connection side (harness.traffic.connections) on real sockets: the route a
connection took is recorded as ground truth, no endpoint is refused, and the pod header is read
from the header block whatever its case or chunking."""

from __future__ import annotations

import pytest

from harness.platforms.base import Route
from tests.traffic import servers
from tests.traffic.helpers import run_engine


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
