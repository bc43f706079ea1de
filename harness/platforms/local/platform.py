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
from harness.platforms.local.endpoints import ProxyResolver, ProxyView
from harness.platforms.local.ingress import LocalIngress
from harness.platforms.drain import run_drain
from harness.platforms.local.drain import LocalDrainTarget
from harness.platforms.local.kubelet import Kubelet, raise_if_failed
from harness.platforms.local.nodes import Node, busiest_node, choose_node, node_names
from harness.platforms.local.pods import Pod, Template, pod_name, repo_root
from harness.platforms.local.process import PortAllocator
from harness.platforms.local.rollout import RSCounts, recreate_step, rollout_complete, rolling_update_step

#: how often the controller re-checks even without a pod change
RESYNC_S = 0.25
#: a deleted pod must have ended within its grace period plus this
END_MARGIN_S = 10.0


class LocalPlatform:
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

    async def _replicaset_loop(self, done: anyio.Event) -> None:
        """The ReplicaSet controller during a drain: replace deleted pods,
        place Pending ones as nodes free up."""
        while not done.is_set():
            self._schedule_pending()
            new, _, n, _ = self._counts()
            for _ in range(max(0, self.scenario.deployment.replicas - n.replicas)):
                self._create_pod()
            self._controller_wake = anyio.Event()
            with anyio.move_on_after(RESYNC_S):
                await self._controller_wake.wait()

    def _pods_per_node(self) -> dict[str, int]:
        on = {n.name: 0 for n in self.nodes}
        for p in self.pods:
            if p.node is not None and not p.deleting:
                on[p.node] += 1
        return on

    def _schedule_pending(self) -> None:
        for pod in self.pods:
            if pod.node is None and not pod.deleting:
                self._place(pod)

    def _place(self, pod: Pod) -> bool:
        node, why = choose_node(self.nodes, self._pods_per_node(), self.scenario.deployment)
        if node is None:
            if pod.pending_reason != why:
                pod.pending_reason = why
                self.events.emit(self.clock.now(), pod.name, EventKind.FAILED_SCHEDULING, reason=why)
            return False
        pod.node = node
        assert self._tg is not None
        self._tg.start_soon(self.kubelet.run_pod, pod, self._deleted[pod.name])
        return True

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

    # ---- controller ------------------------------------------------------------------------
    def _counts(self) -> tuple[list[Pod], list[Pod], RSCounts, RSCounts]:
        now, min_ready = self.clock.now(), int(self.scenario.deployment.min_ready_seconds * 1e9)
        h = self.template.hash()
        new = [p for p in self.pods if p.template_hash == h and not p.deleting]
        old = [p for p in self.pods if p.template_hash != h and not p.deleting]
        return (new, old, RSCounts(len(new), sum(p.available(now, min_ready) for p in new)),
                RSCounts(len(old), sum(p.available(now, min_ready) for p in old)))

    async def _reconcile(self) -> None:
        d = self.scenario.deployment
        desired = d.replicas
        last_sig, last_progress = None, self.clock.now()
        while True:
            raise_if_failed(self.pods)
            self._schedule_pending()
            new, old, n, o = self._counts()
            self.state = self.rollout_state()
            if rollout_complete(desired, o, n):
                return
            if d.strategy.type == "Recreate":
                running = sum(1 for p in self.pods if p.template_hash != self.template.hash() and not p.gone)
                step = recreate_step(desired, o, n, running)
            else:
                step = rolling_update_step(desired, self.scenario.max_surge(), self.scenario.max_unavailable(), o, n)
            for _ in range(step.scale_up):
                self._create_pod()
            for pod in sorted(old, key=Pod.deletion_rank)[:step.scale_down]:
                self._delete_pod(pod)
            sig = (n.replicas + step.scale_up, n.available, sum(p.ready for p in new), o.replicas - step.scale_down)
            now = self.clock.now()
            if sig != last_sig:
                last_sig, last_progress = sig, now
            elif now - last_progress > d.progress_deadline_seconds * 1e9:
                raise PlatformError(self._stuck_message())
            if step.scale_up or step.scale_down:
                await anyio.sleep(0)  # our own change re-triggers a sync at once, as the RS update does
                continue
            self._controller_wake = anyio.Event()
            with anyio.move_on_after(RESYNC_S):
                await self._controller_wake.wait()

    def _wake_controller(self) -> None:
        self._controller_wake.set()

    wake_controller = _wake_controller

    async def _until(self, cond, what: str, limit_s: float | None = None) -> None:
        limit = limit_s if limit_s is not None else self.scenario.deployment.progress_deadline_seconds
        with anyio.move_on_after(limit):
            while not cond():
                raise_if_failed(self.pods)
                await anyio.sleep(0.02)
            return
        raise PlatformError(f"timed out after {limit:g}s waiting for {what}")

    def _create_pod(self) -> Pod:
        t = self.template
        h = t.hash()
        name = pod_name(self.scenario.deployment.name, h, self.rng)
        pod = Pod(name=name, template=t, template_hash=h, port=self.ports.allocate(), created_ns=self.clock.now())
        self.pods.append(pod)
        self._deleted[name] = anyio.Event()
        self.events.emit(pod.created_ns, name, EventKind.POD_CREATED, replicaset=f"{self.scenario.deployment.name}-{h}",
                         revision=t.revision, port=pod.port)
        self._place(pod)
        return pod

    def _delete_pod(self, pod: Pod, reason: str = "scale down") -> None:
        now = self.clock.now()
        pod.deleting, pod.deletion_ns = True, now
        self.events.emit(now, pod.name, EventKind.DELETION_REQUESTED, reason=reason,
                         grace_period_s=self.scenario.deployment.termination_grace_period_seconds)
        self.proxy.pod_terminating(now, pod.name)
        self._deleted[pod.name].set()
        if pod.node is None:  # Pending: no kubelet runs it
            pod.gone = True
            self.events.emit(now, pod.name, EventKind.POD_DELETED)
        self.wake_controller()

    delete_pod = _delete_pod

    async def _proxy_loop(self) -> None:
        while True:
            self._proxy_wake = anyio.Event()
            now = self.clock.now()
            self.proxy.apply_due(now)
            nxt = self.proxy.next_due_ns()
            with anyio.move_on_after((nxt - now) / 1e9 if nxt is not None else 3600):
                await self._proxy_wake.wait()

    # ---- reporting ------------------------------------------------------------------------
    def rollout_state(self) -> str:
        new, old, n, _ = self._counts()
        terminating = sum(1 for p in self.pods if p.deleting and not p.gone)
        ready_new = sum(p.ready for p in new)
        text = f"rev {self.template.revision}: new {ready_new}/{self.scenario.deployment.replicas} ready"
        if old:
            text += f", old {len(old)}"
        if terminating:
            text += f", {terminating} terminating"
        pending = sum(1 for p in self.pods if p.node is None and not p.deleting)
        if pending:
            text += f", {pending} pending"
        cordoned = [nd.name for nd in self.nodes if nd.unschedulable]
        if cordoned:
            text = f"{', '.join(cordoned)} cordoned; " + text
        return text + f", {len(self.proxy.visible)} endpoints"

    def _stuck_message(self) -> str:
        d = self.scenario.deployment
        new, _, n, _ = self._counts()
        lines = [f"rollout made no progress for {d.progress_deadline_seconds:g}s (progressDeadlineSeconds): "
                 f"{n.available}/{d.replicas} new pods available"]
        stuck = [p for p in new if not p.ready]
        if stuck:
            p = stuck[0]
            if p.node is None:
                lines.append(f"  pod {p.name} is Pending: {p.pending_reason}")
                return "\n".join(lines)
            lines.append(f"  pod {p.name} never became ready" + (f" ({p.last_probe_failure})" if p.last_probe_failure else ""))
            lines.append(self._log_tail(p.name).lstrip("\n"))
        return "\n".join(lines)

    def _log_tail(self, pod: str) -> str:
        rep = self.kubelet.replicas.get(pod)
        if rep is None:
            return ""
        tail = [f"    {line}" for line in list(rep.tail)[-10:]] or ["    (no output)"]
        return "\n".join([f"\n  command: {' '.join(rep.argv)}", f"  last log lines ({rep.log_path}):", *tail])
