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

from harness.errors import ObservationIncomplete, PlatformError
from harness.model.clock import RunClock
from harness.model.events import EventKind, EventWriter
from harness.model.rundir import LOGS_DIR
from harness.model.scenario import HTTPGetAction, Scenario
from harness.platforms.local.endpoints import ProxyResolver, ProxyView
from harness.platforms.local.ingress import LocalIngress
from harness.platforms.local.kubelet import Kubelet, raise_if_failed
from harness.platforms.local.pods import Pod, Template, pod_name, repo_root
from harness.platforms.local.probes import http_get
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
        #: traffic.via: ingress -- the proxy in front, fed from self.proxy's view
        self.ingress = (LocalIngress(opts=scenario.traffic.ingress, host=local.host, ports=self.ports,
                                     run_dir=self.run_dir, clock=clock, events=events)
                        if scenario.traffic.via == "ingress" else None)
        app = scenario.app
        cwd = repo_root() / app.workdir if app.workdir else repo_root()
        self.kubelet = Kubelet(deployment=scenario.deployment, stop_signal=app.stop_signal, host=local.host,
                               container_port=app.container_port, clock=clock, events=events, proxy=self.proxy,
                               logs_dir=self.run_dir / LOGS_DIR, cwd=str(cwd), on_change=self._wake_controller)
        self.template = Template.initial(scenario)
        self.pods: list[Pod] = []
        self._deleted: dict[str, anyio.Event] = {}
        self._controller_wake = anyio.Event()
        self._proxy_wake = anyio.Event()
        self.proxy.on_change = lambda: self._proxy_wake.set()
        self._tg: anyio.abc.TaskGroup | None = None
        self.state = "starting"

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
        its endpoint is in the traffic path's view."""
        self.state = "deploying"
        self.kubelet.fail_fast = True
        try:
            await self._reconcile()
            await self._until(lambda: len(self.proxy.visible) >= self.scenario.deployment.replicas,
                              "endpoints of every replica to reach the traffic path")
            if self.ingress is not None:
                await self._until(lambda: len(self.ingress.visible_pods()) >= self.scenario.deployment.replicas,
                                  "the ingress proxy to route to every replica")
            await self._until_serving()
        finally:
            self.kubelet.fail_fast = False
        self.state = "deployed"

    async def _until_serving(self) -> None:
        """The baseline is the control, so it starts only once every replica
        answers the traffic path without a 5xx (an app without a readiness
        probe may be "ready" long before it can serve)."""
        action = HTTPGetAction(path=self.scenario.traffic.path)
        limit = self.scenario.deployment.progress_deadline_seconds
        waiting = list(self.proxy.routes)
        with anyio.move_on_after(limit):
            while waiting:
                raise_if_failed(self.pods)
                for route in list(waiting):
                    _, reason = await http_get(route.host, route.port, action, 1.0)
                    if reason.startswith("HTTP ") and int(reason[5:]) < 500:
                        waiting.remove(route)
                if waiting:
                    await anyio.sleep(0.1)
            return
        raise PlatformError(f"pod {waiting[0].pod} did not answer GET {action.path} without an error within "
                            f"{limit:g}s (progressDeadlineSeconds) after it became ready"
                            + self._log_tail(waiting[0].pod or ""))

    async def disrupt(self) -> None:
        """Roll out the scenario's new template; return when the rollout is
        complete and every old pod has terminated."""
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
        assert self._tg is not None
        self._tg.start_soon(self.kubelet.run_pod, pod, self._deleted[name])
        return pod

    def _delete_pod(self, pod: Pod) -> None:
        now = self.clock.now()
        pod.deleting, pod.deletion_ns = True, now
        self.events.emit(now, pod.name, EventKind.DELETION_REQUESTED,
                         grace_period_s=self.scenario.deployment.termination_grace_period_seconds)
        self.proxy.pod_terminating(now, pod.name)
        self._deleted[pod.name].set()

    async def _proxy_loop(self) -> None:
        while True:
            self._proxy_wake = anyio.Event()
            now = self.clock.now()
            if self.proxy.apply_due(now) and self.ingress is not None:
                self.ingress.set_upstreams(self.proxy.visible)
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
        return text + f", {len(self.proxy.visible)} endpoints"

    def _stuck_message(self) -> str:
        d = self.scenario.deployment
        new, _, n, _ = self._counts()
        lines = [f"rollout made no progress for {d.progress_deadline_seconds:g}s (progressDeadlineSeconds): "
                 f"{n.available}/{d.replicas} new pods available"]
        stuck = [p for p in new if not p.ready]
        if stuck:
            p = stuck[0]
            lines.append(f"  pod {p.name} never became ready" + (f" ({p.last_probe_failure})" if p.last_probe_failure else ""))
            lines.append(self._log_tail(p.name).lstrip("\n"))
        return "\n".join(lines)

    def _log_tail(self, pod: str) -> str:
        rep = self.kubelet.replicas.get(pod)
        if rep is None:
            return ""
        tail = [f"    {line}" for line in list(rep.tail)[-10:]] or ["    (no output)"]
        return "\n".join([f"\n  command: {' '.join(rep.argv)}", f"  last log lines ({rep.log_path}):", *tail])
