"""A bounded load check for the sample app on loopback: how many requests per
second one replica sustains, and what latency a given rate sees.

Not the harness's traffic engine; a tool to size the sample app and the
shipped scenarios. Only 127.0.0.0/8 targets are accepted, every run is bounded
in time (at most 60 s) and in count.

    python sample-app/loadcheck.py --port 8080 --connections 16 --seconds 5
    python sample-app/loadcheck.py --port 8081 --port 8082 --rate 500 --seconds 10

Closed loop (default, --rate 0): each connection sends its next request as
soon as the previous answer arrives; prints the throughput. Open loop
(--rate R): requests are scheduled every 1/R s and handed to the
connections; latency counts from the scheduled time, so queueing shows.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import random
import sys
import time

MAX_SECONDS = 60.0
MAX_REQUESTS = 2_000_000


async def _open(host: str, port: int):
    return await asyncio.open_connection(host, port)


async def _request(reader, writer, path: bytes) -> int:
    writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: loadcheck\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    close = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and b"close" in value.lower():
            close = True
    if length:
        await reader.readexactly(length)
    return -status if close else status


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.status: dict[int, int] = {}
        self.errors: dict[str, int] = {}

    def add(self, status: int, latency: float) -> None:
        self.status[status] = self.status.get(status, 0) + 1
        self.latencies.append(latency)

    def error(self, exc: BaseException) -> None:
        name = type(exc).__name__
        self.errors[name] = self.errors.get(name, 0) + 1

    def summary(self, elapsed: float) -> str:
        lat = sorted(self.latencies)

        def q(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

        n = len(lat)
        return (f"requests={n} elapsed={elapsed:.2f}s rate={n / elapsed:.0f}/s "
                f"p50={q(0.5):.1f}ms p99={q(0.99):.1f}ms max={q(1.0):.1f}ms "
                f"status={self.status} errors={self.errors}")


async def _worker(host: str, ports: list[int], path: bytes, stats: Stats, tickets: asyncio.Queue | None,
                  stop_at: float, budget: list[int]) -> None:
    reader = writer = None
    while time.monotonic() < stop_at and budget[0] > 0:
        if tickets is not None:
            scheduled = await tickets.get()
            if scheduled is None:
                break
        else:
            scheduled = time.monotonic()
        budget[0] -= 1
        try:
            if writer is None:
                reader, writer = await _open(host, random.choice(ports))
            status = await asyncio.wait_for(_request(reader, writer, path), 30)
            stats.add(abs(status), time.monotonic() - scheduled)
            if status < 0:
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as exc:
            stats.error(exc)
            if writer is not None:
                writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def _pace(rate: float, tickets: asyncio.Queue, stop_at: float, n_workers: int) -> None:
    start = time.monotonic()
    i = 0
    while True:
        at = start + i / rate
        if at >= stop_at:
            break
        delay = at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tickets.put_nowait(at)
        i += 1
    for _ in range(n_workers):
        tickets.put_nowait(None)


async def run(host: str, ports: list[int], connections: int, seconds: float, rate: float, path: str) -> Stats:
    stats = Stats()
    start = time.monotonic()
    stop_at = start + seconds
    budget = [MAX_REQUESTS]
    tickets: asyncio.Queue | None = asyncio.Queue() if rate > 0 else None
    tasks = [asyncio.create_task(_worker(host, ports, path.encode(), stats, tickets, stop_at, budget))
             for _ in range(connections)]
    if tickets is not None:
        tasks.append(asyncio.create_task(_pace(rate, tickets, stop_at, connections)))
    await asyncio.wait(tasks, timeout=seconds + 35)
    for t in tasks:
        t.cancel()
    print(stats.summary(time.monotonic() - start))
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, action="append", required=True, help="repeat for several replicas")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=0.0, help="0 = closed loop")
    ap.add_argument("--path", default="/work")
    a = ap.parse_args(argv)
    if not ipaddress.ip_address(a.host).is_loopback:
        print("loadcheck: only loopback (127.0.0.0/8) targets are allowed", file=sys.stderr)
        return 2
    if not 0 < a.seconds <= MAX_SECONDS:
        print(f"loadcheck: --seconds must be in (0, {MAX_SECONDS:g}]", file=sys.stderr)
        return 2
    try:
        import uvloop
        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run(a.host, a.port, max(1, a.connections), a.seconds, a.rate, a.path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
