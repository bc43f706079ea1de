"""The ingress hop on the local platform: the real Traefik binary in front of
the replicas, fed through its file provider from the local platform's
EndpointSlice (ready endpoints that are not terminating, at the moment they
change), as Traefik's Kubernetes providers watch the EndpointSlices and fence
a terminating endpoint on a cluster. Its lag is its own reaction (file watch
and the 2 s providersThrottleDuration), not kube-proxy's propagation; it has
its own upstream keep-alive pool and its own 502s.

The proxy's reaction is measured, not assumed: after each configuration
write the harness reads back, from the proxy's API, which upstreams it routes
to, and stamps ``endpoint_added`` / ``endpoint_removed`` (detail
``hop: ingress``) when that view changes. The access log (JSON, with the
engine's X-Request-Id) and Traefik's debug log go to ``<run>/ingress/``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio

from harness.errors import BadInput, PlatformError
from harness.model.clock import RunClock
from harness.model.events import EventKind, EventWriter
from harness.model.ingresslog import INGRESS_DIR, PROXY_LOG
from harness.model.routing import Route, StaticResolver
from harness.model.scenario import Ingress
from harness.platforms.ingress import traefik
from harness.platforms.local.process import Child, PortAllocator

#: how often the proxy's view is read back while it differs from what was written
POLL_S = 0.01
#: the proxy must answer /ping within this long after start
START_TIMEOUT_S = 30.0


async def http_get(host: str, port: int, path: str, timeout: float = 1.0) -> tuple[int, bytes]:
    """One GET on a fresh connection (HTTP/1.0, read to EOF): (status, body); (0, b'') on any failure."""
    try:
        with anyio.fail_after(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
                data = await reader.read(-1)
            finally:
                writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return 0, b""
    head, _, body = data.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    try:
        return int(parts[1]), body
    except (IndexError, ValueError):
        return 0, b""


class LocalIngress:
    """Traefik run as a child process, its configured and observed upstreams."""

    def __init__(self, *, opts: Ingress, host: str, ports: PortAllocator, run_dir: Path, clock: RunClock,
                 events: EventWriter):
        self.opts, self.host, self.clock, self.events = opts, host, clock, events
        self.dir = run_dir / INGRESS_DIR
        self.config_dir = self.dir / "dynamic"
        self.web_port = ports.allocate()
        self.api_port = ports.allocate()
        self.child: Child | None = None
        self.desired: dict[str, str] = {}   # upstream host:port -> pod, as last written
        self.observed: dict[str, str] = {}  # the same, as the proxy routes now
        self._pods: dict[str, str] = {}     # every upstream ever written -> pod
        self._written_ns = 0
        self._wake = anyio.Event()
        self.reactions_ms: list[float] = []

    # -- the traffic path's entry ------------------------------------------------------
    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.web_port}{path}"

    def resolver(self) -> StaticResolver:
        return StaticResolver(self.host, self.web_port)

    def describe(self) -> dict:
        return {"proxy": "traefik", "version": traefik.TRAEFIK_VERSION, "binary": str(traefik.binary_path()),
                "provider": "file", "web": f"{self.host}:{self.web_port}", "retries": self.opts.retries,
                "upstream_idle_timeout_s": self.opts.upstream_idle_timeout_seconds,
                "dial_timeout_s": self.opts.dial_timeout_seconds,
                "response_header_timeout_s": self.opts.response_header_timeout_seconds,
                "reaction_ms": sorted(round(x, 1) for x in self.reactions_ms)}

    @property
    def settled(self) -> bool:
        return self.desired.keys() == self.observed.keys()

    def visible_pods(self) -> set[str]:
        return set(self.observed.values())

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self, tg: anyio.abc.TaskGroup) -> None:
        binary = traefik.binary_path()
        if not binary.is_file():
            raise BadInput(f"traffic.via: ingress needs the Traefik binary, not found at {binary}; "
                                f"build it with `make traefik` (or set ROLLOUT_HARNESS_TRAEFIK)")
        traefik.write_dynamic_config(self.config_dir, [], self.opts)
        argv = [str(binary), *traefik.static_args(
            web=f"{self.host}:{self.web_port}", api=f"{self.host}:{self.api_port}",
            provider=[f"--providers.file.directory={self.config_dir}", "--providers.file.watch=true"],
            log_dir=str(self.dir))]
        (self.dir / "argv.txt").write_text("\n".join(argv) + "\n", encoding="utf-8")
        self.child = await Child.spawn(argv, env={"PATH": "/usr/bin:/bin"}, cwd=str(self.dir), capture=False)
        with anyio.move_on_after(START_TIMEOUT_S):
            while True:
                if not self.child.running:
                    raise PlatformError(f"the ingress proxy exited at start (code {self.child.returncode})"
                                        + self._log_tail())
                status, _ = await http_get(self.host, self.api_port, "/ping")
                if status == 200:
                    break
                await anyio.sleep(0.05)
        if not self.child.running or (await http_get(self.host, self.api_port, "/ping"))[0] != 200:
            raise PlatformError(f"the ingress proxy did not answer /ping within {START_TIMEOUT_S:g}s" + self._log_tail())
        tg.start_soon(self._watch)

    async def stop(self) -> None:
        if self.child is not None and self.child.running:
            self.child.kill()
            with anyio.move_on_after(5):
                await self.child.wait()

    def _log_tail(self) -> str:
        p = self.dir / PROXY_LOG
        lines = p.read_text(encoding="utf-8", errors="replace").splitlines()[-5:] if p.exists() else []
        return "".join(f"\n    {x}" for x in lines) or f"\n    (no log at {p})"

    # -- the proxy's view ---------------------------------------------------------------
    def set_upstreams(self, routes: dict[str, Route]) -> None:
        """The endpoint view changed: write it for the proxy (called on the platform's loop)."""
        self.desired = {f"{r.host}:{r.port}": pod for pod, r in routes.items()}
        self._pods.update(self.desired)
        traefik.write_dynamic_config(self.config_dir, sorted(self.desired), self.opts)
        self._written_ns = self.clock.now()
        self._wake.set()

    async def _watch(self) -> None:
        path = f"/api/http/services/{traefik.SERVICE}@file"
        while True:
            if self.settled:
                self._wake = anyio.Event()
                await self._wake.wait()
                continue
            status, body = await http_get(self.host, self.api_port, path)
            now = self.clock.now()
            servers = traefik.api_servers(body) if status == 200 else (set() if status == 404 else None)
            if servers is not None:
                self._apply(now, servers)
            await anyio.sleep(POLL_S)

    def _apply(self, now: int, servers: set[str]) -> None:
        written = self._written_ns
        changed = False
        for up in sorted(servers - self.observed.keys()):
            pod = self._pods.get(up, "")
            self.observed[up] = pod
            self.events.emit(now, pod, EventKind.ENDPOINT_ADDED, hop="ingress", upstream=up,
                             config_written_ns=written, reaction_ms=round((now - written) / 1e6, 1))
            changed = True
        for up in sorted(self.observed.keys() - servers):
            pod = self.observed.pop(up)
            self.events.emit(now, pod, EventKind.ENDPOINT_REMOVED, hop="ingress", upstream=up,
                             config_written_ns=written, reaction_ms=round((now - written) / 1e6, 1))
            changed = True
        if changed:
            self.reactions_ms.append((now - written) / 1e6)
