"""Before the baseline: wait until the target actually serves.

A platform's "all replicas ready" is not the same as "the service answers":
without a readiness probe a warming-up app is in the endpoints at once. The
baseline is the control the rollout is judged against, so it must start from
a serving target. This sends a few requests the way the engine would (each
on a new connection routed by the platform's resolver) until ``need`` in a
row succeed, bounded by ``deadline_s``; it raises ``PlatformError`` naming
what the target answered if it never does (the run is then inconclusive).

Every replica must have answered, not only some: "ready" in the API is not
"programmed on the path". kube-proxy applies endpoint changes in batches
(its minSyncPeriod, 1 s by default, plus the time an iptables restore takes
on a busy node); traffic that starts in between goes to the endpoints it
already has. Seen on kind: the whole first 0.3 s of a 500 req/s baseline on
one of six pods, 85 of them 503 'overloaded' (docs/kind.md). Where the
resolver names each route's pod (the local platform), or where the answers
name theirs (``traffic.podHeader``: any server can set it), the check waits
for every replica. A path that never spreads (session affinity, a proxy
pinned to some pods) is accepted after ``SPREAD_TRIES`` answers per replica.

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
#: answers in a row per replica after which a path that still reaches only
#: some pods is taken as it is (at random, 6 pods are all seen within 120
#: answers but for a chance below 1e-8; at ~40 answers/s that is past kube-proxy's sync)
SPREAD_TRIES = 20
#: header lines read from an answer, looking for the pod header
MAX_HEADER_LINES = 100


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


async def _pod_named(reader: asyncio.StreamReader, header: bytes) -> str | None:
    """The value of ``header`` (lower-case name and colon) among the answer's header lines."""
    for _ in range(MAX_HEADER_LINES):
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return None
        if line.lower().startswith(header):
            return line[len(header):].strip().decode("latin-1") or None
    return None


async def _one(target: Target, resolver: Resolver, timeout: float,
               pod_header: bytes = b"") -> tuple[str | None, str | None]:
    """(None if the request got a non-error response else what went wrong, the pod it went to:
    the route's, else the one the answer names in ``pod_header``)."""
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
                named = await _pod_named(reader, pod_header) if pod_header and route.pod is None else None
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}".strip(), route.pod
    parts = status_line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        return "no HTTP response", route.pod
    status = int(parts[1])
    pod = route.pod or named
    return (None if status < 400 else f"HTTP {status}" + (f" from {pod}" if pod else "")), pod


async def wait_until_serving(url: str, *, resolver: Resolver | None, need: int, deadline_s: float, pods: int = 0,
                             method: str = "GET", headers: dict[str, str] | None = None,
                             pod_header: str = "", timeout: float = 2.0, interval: float = 0.1) -> int:
    """Return how many attempts it took; raise PlatformError past the deadline.

    Serving means ``need`` answers in a row without an error and, when the
    resolver names the pod of each route (the local platform) or the answers
    name theirs in ``pod_header``, ``pods`` distinct pods among those that
    last answered without one: every replica serves, not only some (an app
    without a readiness probe warms up per pod; kube-proxy programs endpoints
    in batches), or ``SPREAD_TRIES`` answers per replica in a row reached only
    some. This is the one serving check; platforms' ``deploy`` stops at "ready"."""
    target = Target(url, method=method, headers=headers)
    needle = pod_header.lower().encode("latin-1") + b":" if pod_header else b""
    resolver = resolver or StaticResolver(target.host, target.port)
    ok_in_row = attempts = 0
    serving: set[str] = set()
    named = False  # the resolver names pods: count them
    last = "no attempt"
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        attempts += 1
        problem, pod = await _one(target, resolver, timeout, needle)
        named |= pod is not None
        if problem is None:
            ok_in_row += 1
            if pod is not None:
                serving.add(pod)
            if ok_in_row >= need and (not named or len(serving) >= pods or ok_in_row >= SPREAD_TRIES * pods):
                return attempts
            continue
        ok_in_row, last = 0, problem
        if pod is not None:
            serving.discard(pod)
        await asyncio.sleep(interval)
    pods_note = f"; {len(serving)} of {pods} pods answered without an error" if named and pods else ""
    raise PlatformError(f"the target {url} did not serve {need} requests in a row within {deadline_s:g} s "
                        f"after all replicas were ready (last: {last}{pods_note}); the baseline would not be a control")
