"""The local platform's Deployment and ReplicaSet controllers, played by the
harness: count new and old pods, take the next rolling-update (or Recreate)
step, create pods from the template and place them on nodes, delete them
(the kubelet runs and stops the processes), replace pods a drain evicted,
and say where a rollout stands. Split from platform.py, which keeps the
Platform seam, the drain and the waits; ``DeploymentController`` is a mixin
of ``LocalPlatform`` and works on its fields.
"""

from __future__ import annotations

import anyio

from harness.errors import PlatformError
from harness.model.events import EventKind
from harness.platforms.local.kubelet import raise_if_failed
from harness.platforms.local.nodes import choose_node
from harness.platforms.local.pods import Pod, pod_name
from harness.platforms.local.rollout import RSCounts, recreate_step, rollout_complete, rolling_update_step

#: how often the controller re-checks even without a pod change
RESYNC_S = 0.25


class DeploymentController:
    """Reconcile the pods towards the platform's template; state for the live display."""

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
