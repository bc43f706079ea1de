"""The engine's logic on a fake network and a fake clock (tests/traffic/fakenet):
the pump, waiting for a connection, drops, the closed loop, stop and abort,
with every time exact. The expected values are worked out in each test's
docstring from the engine's documented rules (docs/engine.md) before the run.
Real sockets are covered by test_classify.py and test_records.py."""

from __future__ import annotations

import asyncio
import errno

from harness.model.requests import read_requests
from harness.model.routing import Route
from harness.traffic.engine import Engine, EngineConfig
from harness.traffic.http1 import Target
from tests.traffic.fakenet import LoopClock, Server, run_virtual

MS = 1_000_000
URL = "http://127.0.0.1:8080/work"


def run(tmp_path, server: Server, *, stops_at=(), resolver=None, routes=None, worker=0, workers=1, **cfg):
    """Run one engine on the virtual loop; returns (result, records, loop time when run() returned)."""
    config = EngineConfig(url=URL, **cfg)

    async def main():
        engine = Engine(config, clock=LoopClock(0, 0), out_dir=tmp_path / "requests", start_ns=0,
                        resolver=resolver, routes=routes, worker=worker, workers=workers)
        loop = asyncio.get_running_loop()
        for t in stops_at:
            loop.call_at(t, engine.stop)
        result = await engine.run()
        return result, round(loop.time() * 1e9)

    result, ended_at = run_virtual(server, main)
    return result, read_requests(tmp_path), ended_at


def ms(values) -> list[float]:
    return [v / MS for v in values]


def test_the_pump_sends_each_request_at_its_scheduled_time_on_one_keepalive_connection(tmp_path):
    """1000 req/s for 10 ms, answers in 0.2 ms: seqs 0..9 due at 0..9 ms, each
    sent on time on the one connection dialled for seq 0, ended 0.2 ms later."""
    server = Server(delay_s=0.0002)
    result, df, _ = run(tmp_path, server, rate=1000, duration=0.01)
    assert list(df.seq) == list(range(10))
    assert ms(df.scheduled_ns) == list(range(10)) and list(df.sent_ns) == list(df.scheduled_ns)
    assert list(df.ended_ns - df.scheduled_ns) == [200_000] * 10
    assert (df.outcome == "ok").all() and (df.pod == "pod-a").all() and df.conn_id.nunique() == 1
    assert list(df.conn_reused) == [False] + [True] * 9 and server.dials == 1
    assert server.requests[3] == (b"GET /work HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: rollout-harness\r\n"
                                  b"X-Request-Id: 3\r\n\r\n")
    assert (result.start_ns, result.end_ns, result.rows, result.interrupted) == (0, 10 * MS, 10, False)


def test_a_request_due_while_the_pool_is_busy_waits_and_the_wait_is_latency(tmp_path):
    """One connection, answers in 2.5 ms, 1000 req/s for 4.5 ms: seq 1 waits for
    seq 0's answer (sent 2.5); the schedule ends at 4.5 with seqs 2..4 waiting;
    stopping closes keep-alive connections as they finish, so each waiter gets a
    new connection when the previous one closes: sent 5.0, 7.5, 10.0 ms."""
    server = Server(delay_s=0.0025)
    _, df, ended_at = run(tmp_path, server, rate=1000, duration=0.0045, connections=1)
    assert ms(df.scheduled_ns) == [0, 1, 2, 3, 4]
    assert ms(df.sent_ns) == [0, 2.5, 5.0, 7.5, 10.0]
    assert ms(df.ended_ns) == [2.5, 5.0, 7.5, 10.0, 12.5]
    assert list(df.conn_reused) == [False, True, False, False, False] and server.dials == 4
    assert (df.outcome == "ok").all() and ended_at == 12.5 * MS


def test_requests_beyond_the_inflight_cap_are_dropped_at_their_scheduled_time(tmp_path):
    """One connection, cap 2 (in flight + waiting), answers in 100 ms: seq 0 in
    flight, seq 1 waits, seqs 2..4 are dropped when due (never sent)."""
    _, df, _ = run(tmp_path, Server(delay_s=0.1), rate=1000, duration=0.005, connections=1, max_inflight=2,
                   read_timeout=1.0)
    assert list(df.outcome) == ["ok", "ok", "dropped", "dropped", "dropped"]
    assert ms(df.sent_ns) == [0, 100, -1e-6, -1e-6, -1e-6]
    assert ms(df.ended_ns) == [100, 200, 2, 3, 4]
    assert list(df.error[2:]) == ["in-flight cap reached"] * 3


def test_a_request_that_waited_longer_than_the_read_timeout_is_dropped_by_the_sweep(tmp_path):
    """One connection, answers in 40 ms, read timeout 62.5 ms (the sweep runs
    every 15.625 ms): seq 1 is sent at 40 ms; seq 2 (due at 2 ms) is still
    waiting at the sweep of 78.125 ms, 76.1 ms after it was due: dropped then."""
    _, df, _ = run(tmp_path, Server(delay_s=0.04), rate=1000, duration=0.0025, connections=1,
                   read_timeout=0.0625)
    assert list(df.outcome) == ["ok", "ok", "dropped"]
    assert ms(df.sent_ns) == [0, 40, -1e-6] and ms(df.ended_ns) == [40, 80, 78.125]
    assert df.error[2] == "waited longer than the read timeout for a connection"


def test_no_answer_is_a_read_timeout_found_by_the_sweep(tmp_path):
    """Never answered, read timeout 62.5 ms, sent at 0: past its deadline at the
    first sweep after 62.5 ms, which is 78.125 ms (62.5 is not past it)."""
    _, df, _ = run(tmp_path, Server(delay_s=None), rate=1000, duration=0.001, read_timeout=0.0625)
    assert list(df.outcome) == ["read_timeout"] and ms(df.ended_ns) == [78.125]
    assert df.errno[0] == errno.ETIMEDOUT


def test_the_closed_loop_keeps_every_connection_busy_until_the_end(tmp_path):
    """Closed loop, 2 connections, answers in 3 ms, 10 ms: two requests at 0, 3,
    6 and 9 ms, each sent the moment the previous answer came; 8 in all."""
    server = Server(delay_s=0.003)
    result, df, ended_at = run(tmp_path, server, rate=0, duration=0.01, connections=2)
    assert list(df.seq) == list(range(8))
    assert ms(df.sent_ns) == [0, 0, 3, 3, 6, 6, 9, 9] and list(df.scheduled_ns) == list(df.sent_ns)
    assert list(df.ended_ns - df.sent_ns) == [3 * MS] * 8
    assert list(df.conn_reused) == [False, False] + [True] * 6 and server.dials == 2
    assert result.end_ns == 10 * MS and ended_at == 12 * MS


def test_stop_ends_the_schedule_and_lets_requests_in_flight_finish(tmp_path):
    """1000 req/s with no end, answers in 5 ms, stop at 3.5 ms: seqs 0..3 were
    due; run() returns when seq 3's answer comes (8 ms); nothing is lost."""
    result, df, ended_at = run(tmp_path, Server(delay_s=0.005), rate=1000, duration=None, stops_at=[0.0035])
    assert list(df.seq) == [0, 1, 2, 3] and (df.outcome == "ok").all()
    assert ms(df.ended_ns) == [5, 6, 7, 8]
    assert result.end_ns == 3.5 * MS and ended_at == 8 * MS and result.rows == 4


def test_a_second_stop_aborts_and_records_what_was_in_flight(tmp_path):
    """Never answered; stop at 3.5 ms, again at 4.5 ms: the 4 requests in flight
    are recorded at 4.5 ms as dropped (the harness gave up, not the service)."""
    _, df, ended_at = run(tmp_path, Server(delay_s=None), rate=1000, duration=None, stops_at=[0.0035, 0.0045],
                          read_timeout=1.0)
    assert list(df.seq) == [0, 1, 2, 3] and (df.outcome == "dropped").all()
    assert (df.error == "aborted before its response").all()
    assert list(df.sent_ns) == list(df.scheduled_ns) and ms(df.ended_ns) == [4.5] * 4
    assert ended_at == 4.5 * MS


def test_a_refused_dial_is_recorded_refused(tmp_path):
    _, df, _ = run(tmp_path, Server(refuse=True), rate=1000, duration=0.003)
    assert list(df.outcome) == ["refused"] * 3 and (df.errno == errno.ECONNREFUSED).all()
    assert list(df.sent_ns) == list(df.scheduled_ns) == list(df.ended_ns)


def test_no_ready_endpoint_is_refused_without_a_dial(tmp_path):
    class Alternate:
        n = 0

        def pick(self):
            self.n += 1
            return Route("127.0.0.1", 8080, "pod-b") if self.n % 2 else None

    server = Server(delay_s=0.0002)
    _, df, _ = run(tmp_path, server, rate=1000, duration=0.004, new_connection_ratio=1.0, resolver=Alternate())
    assert list(df.outcome) == ["ok", "refused", "ok", "refused"] and server.dials == 2
    assert list(df.route_pod.fillna("")) == ["pod-b", "", "pod-b", ""]
    assert list(df.error[[1, 3]]) == ["no ready endpoint to route to"] * 2 and list(df.conn_id[[1, 3]]) == [-1, -1]
    assert server.requests[0].endswith(b"X-Request-Id: 0\r\nConnection: close\r\n\r\n")


def test_worker_w_of_n_sends_seqs_w_w_plus_n_on_the_single_worker_schedule(tmp_path):
    """Worker 1 of 3 at 1000 req/s (global) for 10 ms: seqs 1, 4, 7, each due
    at seq ms, exactly where the one-worker schedule puts them."""
    _, df, _ = run(tmp_path, Server(delay_s=0.0002), rate=1000, duration=0.01, worker=1, workers=3)
    assert list(df.seq) == [1, 4, 7] and ms(df.scheduled_ns) == [1, 4, 7] and (df.worker == 1).all()


class SlowRoutes:
    """A worker's routes from a parent process that answers after ``after_s`` (None: never)."""

    def __init__(self, after_s):
        self.after_s = after_s

    def pick(self):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if self.after_s is not None:
            loop.call_later(self.after_s, fut.set_result, Route("127.0.0.1", 8080, "pod-c"))
        return fut


def test_a_slow_route_answer_is_the_harness_lag_not_a_connect_timeout(tmp_path):
    """A worker waits 2 s for its route (connect timeout 0.5 s, read timeout 5 s):
    the dial starts when the route comes, so the request is ok, sent at 2 s
    (2 s of send lag, the harness's), answered 0.2 ms later."""
    _, df, _ = run(tmp_path, Server(delay_s=0.0002), rate=1000, duration=0.001, new_connection_ratio=1.0,
                   connect_timeout=0.5, routes=SlowRoutes(2.0))
    assert list(df.outcome) == ["ok"] and list(df.route_pod) == ["pod-c"]
    assert ms(df.sent_ns) == [2000] and ms(df.ended_ns) == [2000.2]


def test_no_route_answer_within_the_read_timeout_is_dropped_not_a_service_failure(tmp_path):
    _, df, _ = run(tmp_path, Server(delay_s=0.0002), rate=1000, duration=0.001, new_connection_ratio=1.0,
                   read_timeout=0.0625, routes=SlowRoutes(None))
    assert list(df.outcome) == ["dropped"] and list(df.sent_ns) == [-1] and ms(df.ended_ns) == [62.5]
    assert df.error[0] == "no route from the harness within the read timeout"


def test_a_waiter_is_never_sent_after_waiting_longer_than_the_read_timeout(tmp_path):
    """One connection, never answered, read timeout 62.5 ms: seq 0 times out at
    the sweep of 78.125 ms, which frees the pool slot; seqs 1 and 2 (due at 1
    and 2 ms) have waited longer than the read timeout by then: dropped at
    78.125 ms, not sent on a new connection."""
    server = Server(delay_s=None)
    _, df, _ = run(tmp_path, server, rate=1000, duration=0.0025, connections=1, read_timeout=0.0625)
    assert list(df.outcome) == ["read_timeout", "dropped", "dropped"]
    assert ms(df.ended_ns) == [78.125] * 3 and list(df.sent_ns[1:]) == [-1, -1]
    assert server.dials == 1


def test_the_closed_loop_sends_the_bytes_target_builds(tmp_path):
    """Closed loop, 1 connection, answers in 1 ms, 5 ms: seqs 0..4, each request
    byte for byte Target's keep-alive request for its seq."""
    server = Server(delay_s=0.001)
    _, df, _ = run(tmp_path, server, rate=0, duration=0.005, connections=1)
    target = Target(URL)
    assert list(df.seq) == [0, 1, 2, 3, 4]
    assert server.requests == [target.keepalive_request(s) for s in range(5)]


class Alternating(Server):
    """Answers with pod-a, pod-b, pod-b, pod-a, ... on the one connection."""

    PODS = [b"pod-a", b"pod-b", b"pod-b", b"pod-a", b"pod-ab", b"pod-a"]

    def on_request(self, transport, data):
        pod = self.PODS[(len(self.requests) - 1) % len(self.PODS)]
        body = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pod-Name: " + pod + b"\r\n\r\nok"
        transport.loop.call_later(0.001, transport.respond, body)


def test_each_response_records_its_own_pod_when_the_pod_changes_on_a_connection(tmp_path):
    """Closed loop, 1 connection, 6 ms: six responses naming pod-a, pod-b, pod-b,
    pod-a, pod-ab, pod-a; each row has the pod of its own response."""
    _, df, _ = run(tmp_path, Alternating(), rate=0, duration=0.006, connections=1)
    assert list(df.pod) == ["pod-a", "pod-b", "pod-b", "pod-a", "pod-ab", "pod-a"]


def test_the_sweep_flushes_the_records_once_flush_rows_are_waiting(tmp_path):
    """Besides every flush_interval, the sweep writes a batch once FLUSH_ROWS rows
    wait (a flush holds the loop ~0.1 ms + 0.1 us a row): 255 rows stay
    buffered, the 256th makes one batch of 256, the rest goes at close."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    from harness.model.clock import RunClock
    from harness.traffic import engine as engine_mod

    assert engine_mod.FLUSH_ROWS == 256
    engine = Engine(EngineConfig(url=URL), clock=RunClock.start(), out_dir=tmp_path)

    def add(n):
        for i in range(n):
            engine.writer.add(i, 0, 0, 1, 0, 200, 0, None, 1, False, "pod-a", None)

    def batches():
        if engine.path.stat().st_size == 0:  # the stream's schema goes out with the first batch
            return []
        with pa.memory_map(str(engine.path)) as src:
            return [b.num_rows for b in ipc.open_stream(src)]

    add(255)
    engine._sweep()
    assert batches() == [] and len(engine.writer) == 255
    add(1)
    engine._sweep()
    assert batches() == [256] and len(engine.writer) == 0
    add(3)
    engine._sweep()
    engine.writer.close()
    assert batches() == [256, 3]


class RealTimeLoop(asyncio.SelectorEventLoop):
    """asyncio's loop on the real clock, dialling the fake server (fakenet)."""

    def __init__(self, server):
        super().__init__()
        self.server = server

    async def create_connection(self, protocol_factory, host=None, port=None, **kw):
        return self.server.accept(self, protocol_factory)


def _run_real_time(tmp_path, **cfg):
    from harness.model.clock import RunClock

    server = Server(delay_s=0.0001)
    engine = Engine(EngineConfig(url=URL, **cfg), clock=RunClock.start(), out_dir=tmp_path / "requests")
    loop = RealTimeLoop(server)
    try:
        loop.run_until_complete(engine.run())
    finally:
        loop.close()
    return engine, read_requests(tmp_path)


def test_on_the_real_clock_the_open_loop_wakes_on_the_precise_timer_and_never_sends_early(tmp_path):
    """2000 req/s for 50 ms on the real clock: 100 requests, each sent at or
    after its scheduled time (never before), all answered; the pump woke on
    the timerfd (harness.traffic.wakeup), closed when the engine stopped."""
    engine, df = _run_real_time(tmp_path, rate=2000, duration=0.05)
    assert list(df.seq) == list(range(100)) and (df.outcome == "ok").all()
    assert ms(df.scheduled_ns - df.scheduled_ns[0]) == [i / 2 for i in range(100)]
    assert (df.sent_ns >= df.scheduled_ns).all()
    assert engine._wakeup is not None and engine._wakeup.fired >= 1 and engine._wakeup._fd == -1


def test_without_the_precise_timer_the_open_loop_uses_the_loops_timers(tmp_path, monkeypatch):
    from harness.traffic import engine as engine_mod

    monkeypatch.setattr(engine_mod, "PRECISE_TIMER", False)
    engine, df = _run_real_time(tmp_path, rate=2000, duration=0.05)
    assert list(df.seq) == list(range(100)) and (df.outcome == "ok").all()
    assert (df.sent_ns >= df.scheduled_ns).all() and engine._wakeup is None


def test_the_open_files_limit_is_raised_for_the_inflight_cap_within_the_hard_limit():
    """maxInflight sockets must fit under the soft limit (often 1024): raised in
    a child process, so the test process keeps its own."""
    import subprocess
    import sys

    code = """
import resource
from harness.traffic.engine import raise_open_files_limit
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
print(raise_open_files_limit(300), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
print(raise_open_files_limit(100), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
cap = hard if hard != resource.RLIM_INFINITY else 10**6
print(raise_open_files_limit(cap + 1) <= cap)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "300 300"  # raised to what is needed
    assert out[1] == "300 300"  # never lowered
    assert out[2] == "True"  # never past the hard limit
