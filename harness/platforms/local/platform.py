"""The local platform: a Deployment rolled out as real processes on this
machine, with the Deployment controller, kubelet, EndpointSlice controller
and kube-proxy played by the harness (see DESIGN.md "Platforms — local").

    async with LocalPlatform(scenario, run_dir, clock, events) as platform:
        await platform.deploy()      # all replicas ready and visible to the traffic path
        platform.resolver().pick()   # the endpoint a new connection goes to
        await platform.disrupt()     # the rollout, until every old pod is gone
"""

from __future__ import annotations

import random
import secrets
from pathlib import Path

import anyio

from harness.errors import BadInput, ObservationIncomplete, PlatformError
from harness.model.clock import RunClock
from harness.model.events import EventKind, EventWriter
from harness.model.rundir import LOGS_DIR
from harness.model.scenario import Scenario
from harness.model.workload import require_local_command
from harness.platforms.drain import run_drain
from harness.platforms.local.controller import RESYNC_S, DeploymentController  # noqa: F401 (RESYNC_S re-exported)
from harness.platforms.local.drain import LocalDrainTarget
from harness.platforms.local.endpoints import ProxyResolver, ProxyView
from harness.platforms.local.ingress import LocalIngress
from harness.platforms.local.kubelet import Kubelet, raise_if_failed
from harness.platforms.local.nodes import Node, busiest_node, node_names
from harness.platforms.local.pods import Pod, Template, repo_root
from harness.platforms.local.process import PortAllocator
#: a deleted pod must have ended within its grace period plus this
END_MARGIN_S = 10.0


class LocalPlatform(DeploymentController):
    """The Platform seam, the drain and the waits; the Deployment and
    ReplicaSet controllers are ``DeploymentController``'s (controller.py)."""

    name = "local"

    def __init__(self, scenario: Scenario, run_dir: str | Path, clock: RunClock, events: EventWriter):
        self.scenario = scenario
        self.run_dir = Path(run_dir)
        self.clock = clock
        self.events = events
        local = scenario.local
        self.seed = local.seed if local.seed is not None else secrets.randbits(32)
        self.rng = random.Random(self.seed)
        self.proxy = ProxyView(events=events, host=local.host, delay_s=local.endpoint_propagation_delay_seconds,
                               jitter_s=local.endpoint_propagation_jitter_seconds,
                               rng=random.Random(self.rng.random()))
        self._resolver = ProxyResolver(self.proxy, rng=random.Random(self.rng.random()))
        self.ports = PortAllocator(local.host)
        #: traffic.via: ingress -- the proxy in front, fed from the EndpointSlice (self.proxy.serving)
        self.ingress = (LocalIngress(opts=scenario.traffic.ingress, host=local.host, ports=self.ports,
                                     run_dir=self.run_dir, clock=clock, events=events)
                        if scenario.traffic.via == "ingress" else None)
        if self.ingress is not None:
            self.proxy.on_slice_change = self.ingress.set_upstreams
        require_local_command(scenario)  # manifests: which process plays the container (exit 2 if unsaid)
        app = scenario.app
        cwd = repo_root() / app.workdir if app.workdir else repo_root()
        self.kubelet = Kubelet(deployment=scenario.deployment, stop_signal=app.stop_signal, host=local.host,
                               container_port=app.container_port, clock=clock, events=events, proxy=self.proxy,
                               logs_dir=self.run_dir / LOGS_DIR, cwd=str(cwd), on_change=self._wake_controller)
        self.template = Template.initial(scenario)
        self.nodes = [Node(n) for n in node_names(local.nodes)]
        self.pods: list[Pod] = []
        self.drain_result: dict | None = None
        self._deleted: dict[str, anyio.Event] = {}
        self._controller_wake = anyio.Event()
        self._proxy_wake = anyio.Event()
        self.proxy.on_change = lambda: self._proxy_wake.set()
        self._tg: anyio.abc.TaskGroup | None = None
        self.state = "starting"

    @property
    def repeatable_disrupt(self) -> bool:
        """disrupt() may be called again on the same Deployment (run --repeat):
        a rollout may, a drain leaves its nodes cordoned (a new Deployment per rollout)."""
        return self.scenario.disruption.type in ("rollingUpdate", "restart")

    # ---- the Platform seam --------------------------------------------------------------
    def target_url(self) -> str:
        t = self.scenario.traffic
        if self.ingress is not None:
            return self.ingress.url(t.path)
        return f"http://{self.scenario.local.host}:{self.scenario.app.container_port}{t.path}"

    def resolver(self):
        return self.ingress.resolver() if self.ingress is not None else self._resolver

    def describe(self) -> dict:
        local = self.scenario.local
        return {"seed": self.seed, "endpoint_propagation_delay_s": local.endpoint_propagation_delay_seconds,
                "endpoint_propagation_jitter_s": local.endpoint_propagation_jitter_seconds,
                "balancing": "random (kube-proxy iptables mode)", "cwd": self.kubelet.cwd,
                "nodes": [n.name for n in self.nodes], "drain": self.drain_result,
                **({"ingress": self.ingress.describe()} if self.ingress is not None else {})}

    async def __aenter__(self) -> "LocalPlatform":
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._proxy_loop)
        if self.ingress is not None:
            try:
                await self.ingress.start(self._tg)
            except BaseException:
                await self.__aexit__(None, None, None)
                raise
        return self

    async def __aexit__(self, *exc) -> bool | None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        try:
            return await self._tg.__aexit__(*exc)
        except BaseExceptionGroup as group:
            if exc[1] is not None and len(group.exceptions) == 1 and group.exceptions[0] is exc[1]:
                return False  # the body's own error propagates unwrapped
            raise
        finally:
            await self.teardown()

    async def teardown(self) -> None:
        with anyio.CancelScope(shield=True):
            await self.kubelet.teardown()
            if self.ingress is not None:
                await self.ingress.stop()
        self.state = "torn down"

    async def deploy(self) -> None:
        """Create the Deployment; return once every replica is available and
        its endpoint is in the traffic path's view (serving is checked by the
        caller through the traffic path: harness.traffic.preflight)."""
        self.state = "deploying"
        names = {n.name for n in self.nodes}
        unknown = [n for n in self.scenario.disruption.drain.nodes if n not in names]
        if self.scenario.disruption.type == "drain" and unknown:
            raise BadInput(f"{self.scenario.source_path}: disruption.drain.nodes: no node {unknown[0]!r} on the "
                           f"local platform; it has local.nodes: {len(self.nodes)} ({', '.join(sorted(names))})")
        self.kubelet.fail_fast = True
        try:
            await self._reconcile()
            await self._until(lambda: len(self.proxy.visible) >= self.scenario.deployment.replicas,
                              "endpoints of every replica to reach the traffic path")
            if self.ingress is not None:
                await self._until(lambda: len(self.ingress.visible_pods()) >= self.scenario.deployment.replicas,
                                  "the ingress proxy to route to every replica")
            # whether every replica serves is the runner's one check (harness.traffic.preflight)
        finally:
            self.kubelet.fail_fast = False
        self.state = "deployed"

    async def disrupt(self) -> None:
        """Roll out the scenario's new template (or drain a node); return when
        the rollout is complete and every old pod has terminated."""
        if self.scenario.disruption.type in ("drain", "evict"):
            await self._drain()
            return
        d = self.scenario.deployment
        old = self.template
        self.template = old.changed(self.scenario, restarted_at=str(self.clock.to_wall_ns(self.clock.now())))
        self.events.emit(self.clock.now(), "", EventKind.ROLLOUT_STARTED, strategy=d.strategy.type,
                         max_surge=self.scenario.max_surge(), max_unavailable=self.scenario.max_unavailable(),
                         from_revision=old.revision, to_revision=self.template.revision,
                         from_hash=old.hash(), to_hash=self.template.hash(), change=self.scenario.disruption.type)
        await self._reconcile()
        self.events.emit(self.clock.now(), "", EventKind.ROLLOUT_COMPLETE, revision=self.template.revision)
        self.state = "rolled out; old pods terminating"
        await self._until_deleted_pods_ended()
        await self._until(lambda: self.proxy.next_due_ns() is None and (self.ingress is None or self.ingress.settled),
                          "endpoints to settle")
        self.state = "rolled out"

    async def _drain(self) -> None:
        """Drain (cordon, evict under the PDB, wait, uncordon) while the
        ReplicaSet replaces the evicted pods; then wait until the replacements
        are ready and the endpoints settled. A drain that cannot finish ends
        the run inconclusive (PlatformError)."""
        dis = self.scenario.disruption
        cfg = dis.drain
        on = self._pods_per_node()
        if dis.type == "evict":
            nodes, timeout_s, uncordon = [], dis.evict.timeout_seconds, False
            pods: list[str] | None = sorted(p.name for p in self.pods if not p.deleting)[:dis.evict.pods]
        else:
            nodes, timeout_s, uncordon, pods = cfg.nodes or [busiest_node(on, self.nodes)], cfg.timeout_seconds, \
                cfg.uncordon, None
        self.events.emit(self.clock.now(), "", EventKind.DRAIN_STARTED, nodes=nodes, pods=pods,
                         pods_per_node=dict(on), timeout_s=timeout_s)
        done = anyio.Event()
        assert self._tg is not None
        self._tg.start_soon(self._replicaset_loop, done)

        def emit(kind, pod, **detail):
            self.events.emit(self.clock.now(), pod, kind, **detail)

        self.state = f"draining {', '.join(nodes)}" if nodes else "evicting"
        try:
            res = await run_drain(LocalDrainTarget(self), nodes, timeout_s=timeout_s, now=self.clock.now,
                                  emit=emit, uncordon=uncordon, pods=pods)
        finally:
            done.set()
        self.drain_result = res.as_dict()
        self.events.emit(self.clock.now(), "", EventKind.DRAIN_COMPLETE, **self.drain_result)
        if not res.complete:
            raise PlatformError(res.failure_text(timeout_s))
        self.state = "drained; replacements starting"
        await self._reconcile()  # the ReplicaSet back at full strength, every pod available
        await self._until_deleted_pods_ended()
        await self._until(lambda: self.proxy.next_due_ns() is None, "endpoints to settle")
        self.state = "drained"

    async def _until_deleted_pods_ended(self) -> None:
        """The observation window closes only when every deleted pod's
        process has exited (and the pod is gone); one that has not within
        its grace period + END_MARGIN_S makes the run inconclusive."""
        limit_ns = int((self.scenario.deployment.termination_grace_period_seconds + END_MARGIN_S) * 1e9)
        while True:
            raise_if_failed(self.pods)
            waiting = [p for p in self.pods if p.deleting and not p.gone]
            if not waiting:
                return
            now = self.clock.now()
            for p in waiting:
                if now - p.deletion_ns > limit_ns:
                    raise ObservationIncomplete(
                        f"pod {p.name} did not end within its grace period "
                        f"({self.scenario.deployment.termination_grace_period_seconds:g} s) + {END_MARGIN_S:g} s "
                        "after its deletion: the run did not observe its whole termination")
            await anyio.sleep(0.02)

    # ---- waiting and the kube-proxy loop ---------------------------------------------------
    async def _until(self, cond, what: str, limit_s: float | None = None) -> None:
        limit = limit_s if limit_s is not None else self.scenario.deployment.progress_deadline_seconds
        with anyio.move_on_after(limit):
            while not cond():
                raise_if_failed(self.pods)
                await anyio.sleep(0.02)
            return
        raise PlatformError(f"timed out after {limit:g}s waiting for {what}")

    async def _proxy_loop(self) -> None:
        while True:
            self._proxy_wake = anyio.Event()
            now = self.clock.now()
            self.proxy.apply_due(now)
            nxt = self.proxy.next_due_ns()
            with anyio.move_on_after((nxt - now) / 1e9 if nxt is not None else 3600):
                await self._proxy_wake.wait()
