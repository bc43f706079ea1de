import asyncio

import pytest

from harness.errors import PlatformError
from harness.traffic.preflight import wait_until_serving
from tests.traffic import servers


def test_returns_once_the_target_serves(server_factory):
    srv = server_factory(servers.answer(servers.RESPONSE_OK))
    attempts = asyncio.run(wait_until_serving(srv.url, resolver=None, need=3, deadline_s=10))
    assert attempts == 3


def test_waits_through_warm_up_503s(server_factory):
    answers = iter([503, 503, 503])

    def warming(conn):
        servers.read_request(conn)
        code = next(answers, 200)
        conn.sendall(servers.status_response(code))

    srv = server_factory(warming)
    attempts = asyncio.run(wait_until_serving(srv.url, resolver=None, need=2, deadline_s=20, interval=0.01))
    assert attempts == 5


def test_never_serving_is_a_platform_error_naming_the_answer(server_factory):
    srv = server_factory(servers.answer(servers.status_response(503)))
    with pytest.raises(PlatformError, match="HTTP 503"):
        asyncio.run(wait_until_serving(srv.url, resolver=None, need=2, deadline_s=0.5, interval=0.05))


def test_every_named_pod_must_serve_not_only_some(server_factory):
    """The local platform's resolver names each route's pod: one pod still
    warming (503) keeps the target from serving even when others answer."""
    from harness.model.routing import Route

    ok = server_factory(servers.answer(servers.RESPONSE_OK))
    cold = server_factory(servers.answer(servers.status_response(503)))

    class TwoPods:
        n = 0

        def pick(self):
            self.n += 1
            srv, pod = (ok, "warm") if self.n % 2 else (cold, "cold")
            return Route("127.0.0.1", int(srv.url.rsplit(":", 1)[1].split("/")[0]), pod)

    with pytest.raises(PlatformError, match="1 of 2 pods answered without an error"):
        asyncio.run(wait_until_serving(ok.url, resolver=TwoPods(), need=1, pods=2, deadline_s=0.5, interval=0.01))
    attempts = asyncio.run(wait_until_serving(ok.url, resolver=TwoPods(), need=1, pods=1, deadline_s=5))
    assert attempts == 1


def _pods_answering(server_factory, names):
    """A server whose answers name their pod in X-Pod-Name: ``names`` in turn, then the last forever."""
    answers = iter(names)
    last = [names[-1]]

    def named(conn):
        servers.read_request(conn)
        last[0] = next(answers, last[0])
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nx-pod-name: %s\r\n\r\nok" % last[0].encode())

    return server_factory(named)


def test_answers_naming_their_pod_must_come_from_every_replica(server_factory):
    """Through a NodePort the route names no pod: the answers do. kube-proxy
    programs endpoints in batches, so the first answers may all come from one
    pod of three; serving starts once all three answered (docs/kind.md)."""
    srv = _pods_answering(server_factory, ["a"] * 10 + ["b", "a", "c"])
    attempts = asyncio.run(wait_until_serving(srv.url, resolver=None, need=3, pods=3, deadline_s=20,
                                              pod_header="X-Pod-Name"))
    assert attempts == 13


def test_a_path_that_never_spreads_is_taken_after_enough_answers(server_factory):
    """Session affinity or a pinned proxy reach some pods only: after
    SPREAD_TRIES answers in a row per replica the check stops waiting."""
    from harness.traffic.preflight import SPREAD_TRIES

    srv = _pods_answering(server_factory, ["a"])
    attempts = asyncio.run(wait_until_serving(srv.url, resolver=None, need=3, pods=2, deadline_s=60,
                                              pod_header="X-Pod-Name"))
    assert attempts == SPREAD_TRIES * 2


def test_answers_without_the_pod_header_need_only_the_count_in_a_row(server_factory):
    srv = server_factory(servers.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    attempts = asyncio.run(wait_until_serving(srv.url, resolver=None, need=3, pods=3, deadline_s=10,
                                              pod_header="X-Pod-Name"))
    assert attempts == 3


def test_a_loopback_target_is_dialled_from_another_loopback_address_than_the_engines(server_factory):
    """A refused dial before kube-proxy programs a NodePort leaves a conntrack entry without
    NAT; the engine (from 127.0.0.1) must never draw its tuple (docs/e2e-cluster.md)."""
    peers = []

    def record(conn):
        peers.append(conn.getpeername()[0])
        servers.read_request(conn)
        conn.sendall(servers.RESPONSE_OK)

    srv = server_factory(record)
    asyncio.run(wait_until_serving(srv.url, resolver=None, need=2, deadline_s=10))
    assert peers == ["127.0.0.2", "127.0.0.2"]


@pytest.mark.parametrize("host,source", [("127.0.0.1", ("127.0.0.2", 0)), ("127.0.0.2", None), ("10.1.2.3", None),
                                         ("::1", None), ("example.invalid", None)])
def test_only_ipv4_loopback_targets_get_the_other_source(host, source):
    from harness.traffic.preflight import source_for

    assert source_for(host) == source
