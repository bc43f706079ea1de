"""The kubelet's probes: when each probe runs and what its results mean.

The state machine and the schedule are pure (results in, transitions out; a
time in, the next probe time out) so they are tested with fake time; the
handlers that actually touch the app (httpGet, tcpSocket, exec) are at the end.

Semantics from pkg/kubelet/prober/worker.go:

- a probe worker ticks every periodSeconds from the container's start; a tick
  before initialDelaySeconds has elapsed does nothing;
- readiness and liveness do nothing until the startup probe (if any) has
  succeeded;
- a result changes only after successThreshold consecutive successes or
  failureThreshold consecutive failures; a probe that times out failed;
- initial results: readiness Failure (not ready), liveness Success, startup
  Unknown (not started).
"""

from __future__ import annotations

import asyncio
import enum
import math
from typing import Callable, Mapping, Sequence

from harness.model.scenario import HTTPGetAction, Probe


class ProbeKind(enum.StrEnum):
    STARTUP = "startup"
    READINESS = "readiness"
    LIVENESS = "liveness"


class ProbeState:
    """Consecutive-result counting of one probe of one container."""

    __slots__ = ("kind", "probe", "result", "_last", "_count")

    def __init__(self, kind: ProbeKind, probe: Probe):
        self.kind = kind
        self.probe = probe
        # readiness starts as Failure, liveness as Success, startup as Unknown (None)
        self.result: bool | None = {ProbeKind.READINESS: False, ProbeKind.LIVENESS: True}.get(kind)
        self._last: bool | None = None
        self._count = 0

    def record(self, success: bool) -> bool | None:
        """Feed one probe result; returns the new result when it changes."""
        if success != self._last:
            self._last = success
            self._count = 0
        self._count += 1
        threshold = self.probe.success_threshold if success else self.probe.failure_threshold
        if self._count < threshold or success == self.result:
            return None
        self.result = success
        return success

    @property
    def consecutive_failures(self) -> int:
        return self._count if self._last is False else 0


def next_probe_at(started_ns: int, now_ns: int, probe: Probe) -> int:
    """The first tick at or after ``now_ns`` on which this probe runs: ticks
    are every periodSeconds from the container start, and those before
    initialDelaySeconds are skipped."""
    period = int(probe.period_seconds * 1e9)
    earliest = max(now_ns, started_ns + int(probe.initial_delay_seconds * 1e9))
    k = max(0, math.ceil((earliest - started_ns) / period))
    return started_ns + k * period


# ---- handlers ----------------------------------------------------------------

async def http_get(host: str, port: int, action: HTTPGetAction, timeout: float) -> tuple[bool, str]:
    """One HTTP GET on a fresh connection, as the kubelet sends it; success is
    a status in [200, 400). Returns (success, short reason)."""
    headers = "".join(f"{h['name']}: {h['value']}\r\n" for h in action.http_headers if "name" in h)
    request = (f"GET {action.path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.30\r\n"
               f"Accept: */*\r\n{headers}Connection: close\r\n\r\n").encode()
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            line = await reader.readline()
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            return False, "malformed response"
        status = int(parts[1])
        return 200 <= status < 400, f"HTTP {status}"
    except TimeoutError:
        return False, f"timeout after {timeout:g}s"
    except (OSError, ValueError) as exc:
        return False, type(exc).__name__ + (f" errno {exc.errno}" if getattr(exc, "errno", None) else "")
    finally:
        if writer is not None:
            writer.close()


async def tcp_socket(host: str, port: int, timeout: float) -> tuple[bool, str]:
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
        writer.close()
        return True, "connected"
    except TimeoutError:
        return False, f"timeout after {timeout:g}s"
    except OSError as exc:
        return False, f"{type(exc).__name__} errno {exc.errno}"


async def run_exec(command: Sequence[str], env: Mapping[str, str], cwd: str, timeout: float) -> tuple[bool, str]:
    """Run a command in the pod's environment; exit 0 is success. Its process
    group is killed on timeout."""
    from harness.platforms.local.process import Child

    try:
        child = await Child.spawn(list(command), env=dict(env), cwd=cwd, capture=False)
    except OSError as exc:
        return False, str(exc)
    try:
        async with asyncio.timeout(timeout if timeout != math.inf else None):
            code = await child.wait()
        return code == 0, f"exit {code}"
    except TimeoutError:
        return False, f"timeout after {timeout:g}s"
    finally:
        if child.running:
            child.kill()


async def run_probe(probe: Probe, *, host: str, port_of: Callable[[int | None], int],
                    env: Mapping[str, str], cwd: str, substitute: Callable[[str], str]) -> tuple[bool, str]:
    """Execute one probe against a pod. ``port_of`` maps the manifest's port
    (None or the containerPort) to the port the replica listens on;
    ``substitute`` fills {port}/{pod}/{python} in exec commands."""
    if probe.http_get is not None:
        return await http_get(host, port_of(probe.http_get.port), probe.http_get, probe.timeout_seconds)
    if probe.tcp_socket is not None:
        return await tcp_socket(host, port_of(probe.tcp_socket.port), probe.timeout_seconds)
    assert probe.exec is not None
    return await run_exec([substitute(a) for a in probe.exec.command], env, cwd, probe.timeout_seconds)
