"""The traffic session: the one way `run` and `load` run traffic. With
workers, each worker process asks the caller's resolver for every new
connection (the local platform's kube-proxy view lives on the run's loop)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from harness.model.clock import RunClock
from harness.model.requests import read_requests
from harness.model.routing import Route
from harness.traffic.engine import EngineConfig
from harness.traffic.session import TrafficSession
from harness.traffic.workers import run_on_fast_loop
from tests.traffic import servers


class Alternating:
    """A resolver that lives on the caller's loop: every third pick has no endpoint."""

    def __init__(self, host: str, port: int):
        self.route = Route(host, port, "pod-from-parent")
        self.picks = 0
        self.loop = None

    def pick(self) -> Route | None:
        self.loop = asyncio.get_running_loop()  # called on the caller's loop, never elsewhere
        self.picks += 1
        return None if self.picks % 3 == 0 else self.route


@pytest.mark.slow
def test_workers_take_their_routes_from_the_callers_resolver(tmp_path, server_factory):
    srv = server_factory(servers.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
    parts = urlsplit(srv.url)
    resolver = Alternating(parts.hostname, parts.port)
    # every request on a new connection: one pick per request
    cfg = EngineConfig(url="http://127.0.0.1:9/never-dialled", rate=200, duration=0.5, new_connection_ratio=1.0,
                       read_timeout=2.0)
    session = TrafficSession(cfg, clock=RunClock.start(), out_dir=tmp_path / "requests", workers=2,
                             resolver=resolver)

    async def main():
        results = await session.run()
        return results, asyncio.get_running_loop()

    results, loop = run_on_fast_loop(main)
    df = read_requests(tmp_path)
    assert sorted(df.seq) == list(range(100)) and set(df.worker) == {0, 1}
    assert len(results) == 2 and resolver.loop is loop
    assert resolver.picks == 100
    refused = df[df.outcome == "refused"]
    assert len(refused) == 100 // 3
    assert (refused.error == "no ready endpoint to route to").all() and refused.route_pod.isna().all()
    ok = df[df.outcome == "ok"]
    assert len(ok) == 100 - len(refused) and (ok.route_pod == "pod-from-parent").all()


def test_a_second_stop_aborts_requests_in_flight(tmp_path, server_factory):
    srv = server_factory(servers.never_answer)
    cfg = EngineConfig(url=srv.url, rate=100, duration=5, read_timeout=30.0, connections=4)
    session = TrafficSession(cfg, clock=RunClock.start(), out_dir=tmp_path / "requests")

    async def main():
        task = asyncio.ensure_future(session.run())
        await asyncio.sleep(0.3)
        session.stop()  # stop scheduling; in flight would wait out the 30 s read timeout
        await asyncio.sleep(0.1)
        assert not task.done()
        session.stop()  # abort
        return await asyncio.wait_for(task, 5)

    (result,) = run_on_fast_loop(main)
    df = read_requests(tmp_path)
    assert len(df) == result.rows > 0
    assert len(df) == session.snapshot().issued  # every request issued has its record
    # given up by the harness, not failed by the service: dropped, and said why
    assert (df.outcome == "dropped").all()
    assert set(df.error) == {"aborted before its response", "aborted while waiting for a connection"}
    assert (df[df.error == "aborted before its response"].sent_ns >= 0).all()


@pytest.mark.slow
def test_workers_stopped_before_they_started_send_nothing(tmp_path, server_factory):
    """A run whose rollout ended (or failed) while its worker processes were
    still starting: they are told to stop instead of when to start."""
    srv = server_factory(servers.answer(servers.RESPONSE_OK))
    cfg = EngineConfig(url=srv.url, rate=100, duration=5)
    session = TrafficSession(cfg, clock=RunClock.start(), out_dir=tmp_path / "requests", workers=2)

    async def main():
        task = asyncio.ensure_future(session.run())
        await asyncio.sleep(0)
        session.stop()
        await asyncio.wait_for(session.started(), 60)  # returns: the session ended without starting
        return await asyncio.wait_for(task, 60)

    assert run_on_fast_loop(main) == [] and session.done
    assert not list((tmp_path / "requests").glob("*.arrow")) or read_requests(tmp_path).empty
