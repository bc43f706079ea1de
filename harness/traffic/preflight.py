"""Before the baseline: wait until the target actually serves.

A platform's "all replicas ready" is not the same as "the service answers":
without a readiness probe a warming-up app is in the endpoints at once. The
baseline is the control the rollout is judged against, so it must start from
a serving target. This sends a few requests the way the engine would (each
on a new connection routed by the platform's resolver) until ``need`` in a
row succeed, bounded by ``deadline_s``; it raises ``PlatformError`` naming
what the target answered if it never does (the run is then inconclusive).

A loopback target is dialled from another loopback address (``PROBE_SOURCE``)
than the engine's. A dial refused before kube-proxy has programmed a NodePort
leaves a conntrack entry without NAT for that source port, alive for up to two
minutes; an engine connection that later draws the same source port matches
that entry, skips the NAT and is refused by the host itself. Seen on the
project's cluster: best-practice got 1-5 such refusals in about a third of the
runs (docs/e2e-cluster.md).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import time

from harness.errors import PlatformError
from harness.model.routing import Resolver, StaticResolver
from harness.traffic.http1 import Target


PROBE_SOURCE = "127.0.0.2"


@functools.lru_cache(maxsize=1)
def _probe_source_usable() -> bool:
    """127.0.0.2 is local on Linux (all of 127/8), not on every system."""
    try:
        with socket.socket() as s:
            s.bind((PROBE_SOURCE, 0))
        return True
    except OSError:
        return False


def source_for(host: str) -> tuple[str, int] | None:
    """The local address to dial ``host`` from: ``PROBE_SOURCE`` for an IPv4
    loopback host other than it (where it can be bound), else the kernel's choice."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.version != 4 or not ip.is_loopback or host == PROBE_SOURCE or not _probe_source_usable():
        return None
    return (PROBE_SOURCE, 0)


async def _one(target: Target, resolver: Resolver, timeout: float) -> tuple[str | None, str | None]:
    """(None if the request got a non-error response else what went wrong, the pod it went to)."""
    route = resolver.pick()
    if route is None:
        return "no ready endpoint", None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(route.host, route.port, local_addr=source_for(route.host))
            try:
                writer.write(target.request(0, keepalive=False))
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}".strip(), route.pod
    parts = status_line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        return "no HTTP response", route.pod
    status = int(parts[1])
    return (None if status < 400 else f"HTTP {status}" + (f" from {route.pod}" if route.pod else "")), route.pod


async def wait_until_serving(url: str, *, resolver: Resolver | None, need: int, deadline_s: float, pods: int = 0,
                             method: str = "GET", headers: dict[str, str] | None = None,
                             timeout: float = 2.0, interval: float = 0.1) -> int:
    """Return how many attempts it took; raise PlatformError past the deadline.

    Serving means ``need`` answers in a row without an error and, when the
    resolver names the pod of each route (the local platform), ``pods``
    distinct pods among those that last answered without one: every replica
    serves, not only some (an app without a readiness probe warms up per pod).
    This is the one serving check; platforms' ``deploy`` stops at "ready"."""
    target = Target(url, method=method, headers=headers)
    resolver = resolver or StaticResolver(target.host, target.port)
    ok_in_row = attempts = 0
    serving: set[str] = set()
    named = False  # the resolver names pods: count them
    last = "no attempt"
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        attempts += 1
        problem, pod = await _one(target, resolver, timeout)
        named |= pod is not None
        if problem is None:
            ok_in_row += 1
            if pod is not None:
                serving.add(pod)
            if ok_in_row >= need and (not named or len(serving) >= pods):
                return attempts
            continue
        ok_in_row, last = 0, problem
        if pod is not None:
            serving.discard(pod)
        await asyncio.sleep(interval)
    pods_note = f"; {len(serving)} of {pods} pods answered without an error" if named and pods else ""
    raise PlatformError(f"the target {url} did not serve {need} requests in a row within {deadline_s:g} s "
                        f"after all replicas were ready (last: {last}{pods_note}); the baseline would not be a control")
