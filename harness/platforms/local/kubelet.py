"""The kubelet of the local platform: runs a pod's container as a real
process, probes it, restarts it when liveness fails, and terminates it on
deletion exactly in Kubernetes' order:

    deletion → preStop (counts against the grace period) → stop signal
             → SIGKILL when the grace period runs out (at least 2 s after
               the preStop, as kuberuntime's minimumGracePeriodInSeconds)

Every step is a lifecycle event; the app's JSON log lines become events too.
"""

from __future__ import annotations

import math
import os
import signal as _signal
from typing import Callable

import anyio

from harness.errors import PlatformError
from harness.model.clock import RunClock
from harness.model.events import EventKind, EventWriter, SourceKind
from harness.model.scenario import Deployment, LifecycleHandler, Probe
from harness.platforms.local.endpoints import ProxyView
from harness.platforms.local.pods import Pod, substitute
from harness.platforms.local.probes import ProbeKind, ProbeState, http_get, next_probe_at, run_exec, run_probe
from harness.platforms.applog import app_log_event
from harness.platforms.local.process import STOP_SIGNALS, Replica, exit_code_of

MIN_GRACE_AFTER_PRESTOP_S = 2.0
CRASH_BACKOFF_S = (10, 20, 40, 80, 160, 300)


class Kubelet:
    def __init__(self, *, deployment: Deployment, stop_signal: str, host: str, container_port: int,
                 clock: RunClock, events: EventWriter, proxy: ProxyView, logs_dir, cwd: str,
                 on_change: Callable[[], None]):
        self.deployment = deployment
        self.stop_signal = stop_signal
        self.host = host
        self.container_port = container_port
        self.clock = clock
        self.events = events
        self.proxy = proxy
        self.logs_dir = logs_dir
        self.cwd = cwd
        self.on_change = on_change  # wakes the Deployment controller
        self.replicas: dict[str, Replica] = {}  # pod name -> current container
        #: while the first ReplicaSet comes up, a container that exits means the app cannot run here
        self.fail_fast = False

    # ---- helpers ----------------------------------------------------------------
    def emit(self, pod: Pod | str, kind: EventKind, **detail) -> None:
        self.events.emit(self.clock.now(), pod if isinstance(pod, str) else pod.name, kind, **detail)

    def _sub(self, pod: Pod) -> Callable[[str], str]:
        return lambda a: substitute(a, port=pod.port, pod=pod.name)

    def _port_of(self, pod: Pod) -> Callable[[int | None], int]:
        return lambda p: pod.port if p in (None, self.container_port) else p

    def env_of(self, pod: Pod) -> dict[str, str]:
        env = dict(os.environ)
        env.update(dict(pod.template.env))
        env.update(PORT=str(pod.port), HOST=self.host, POD_NAME=pod.name, PYTHONUNBUFFERED="1")
        return env

    async def _sleep_until(self, t_ns: int) -> None:
        delay = (t_ns - self.clock.now()) / 1e9
        if delay > 0:
            await anyio.sleep(delay)

    # ---- readiness --------------------------------------------------------------------
    def set_ready(self, pod: Pod, ready: bool, **detail) -> None:
        if pod.ready == ready:
            return
        now = self.clock.now()
        pod.ready = ready
        if ready:
            pod.ready_since_ns = now
            pod.ever_ready = True
            self.emit(pod, EventKind.READY, **detail)
            if not pod.deleting:
                self.proxy.pod_ready(now, pod.name, pod.port)
        else:
            self.emit(pod, EventKind.NOT_READY, **detail)
            if not pod.deleting:
                self.proxy.pod_not_ready(now, pod.name)
        self.on_change()

    # ---- the pod's life -------------------------------------------------------------
    async def run_pod(self, pod: Pod, deleted: anyio.Event) -> None:
        """The pod from scheduling to removal; returns when it is gone."""
        self.emit(pod, EventKind.SCHEDULED, node=pod.node)
        crashes = 0
        while not pod.deleting:
            try:
                replica = await self._start_container(pod)
            except OSError as exc:
                pod.failure = str(exc)
                self.on_change()
                break
            how = await self._run_container(pod, replica, deleted)
            if how != "exited" or pod.deleting:
                continue
            if not pod.ever_ready or self.fail_fast:
                tail = "\n".join(f"    {line}" for line in list(replica.tail)[-10:]) or "    (no output)"
                when = "before it ever became ready" if not pod.ever_ready else "while the Deployment came up"
                pod.failure = (f"the app exited with code {exit_code_of(replica.returncode or 0)} {when}: "
                               f"{' '.join(replica.argv)}\n  last log lines "
                               f"({replica.log_path}):\n{tail}")
                self.on_change()
                break
            # CrashLoopBackOff, interrupted by deletion
            backoff = CRASH_BACKOFF_S[min(crashes, len(CRASH_BACKOFF_S) - 1)]
            crashes += 1
            with anyio.move_on_after(backoff):
                await deleted.wait()
        if not pod.deleting:
            await deleted.wait()
        pod.gone = True
        self.proxy.forget(pod.name)
        self.emit(pod, EventKind.POD_DELETED)
        self.on_change()

    async def _start_container(self, pod: Pod) -> Replica:
        argv = [substitute(a, port=pod.port, pod=pod.name) for a in pod.template.command]
        replica = await Replica.start(argv, env=self.env_of(pod), cwd=self.cwd,
                                      log_path=self.logs_dir / f"{pod.name}.log")
        self.replicas[pod.name] = replica
        pod.started = self.deployment.startup_probe is None
        self.emit(pod, EventKind.CONTAINER_STARTED, pid=replica.pid, port=pod.port, restarts=pod.restarts,
                  command=argv)
        return replica

    async def _run_container(self, pod: Pod, replica: Replica, deleted: anyio.Event) -> str:
        """Until the container's process exits: "deleted" (terminated on
        deletion), "restarted" (killed after a failed liveness/startup probe)
        or "exited" (on its own)."""
        started_ns = self.clock.now()
        how = "exited"

        def restart(reason: str) -> None:
            nonlocal how
            if pod.deleting or how != "exited":
                return
            how = "restarted"
            pod.restarts += 1
            tg.start_soon(self._stop_container, pod, replica, self.clock.now(), reason)

        async def on_deletion() -> None:
            nonlocal how
            await deleted.wait()
            how = "deleted"
            await self._stop_container(pod, replica, pod.deletion_ns, "deletion")

        log_done = anyio.Event()

        async def pump() -> None:
            try:
                await replica.pump_log(lambda line: self._app_line(pod, line))
            finally:
                log_done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(pump)
            tg.start_soon(on_deletion)
            d = self.deployment
            for kind, probe in ((ProbeKind.STARTUP, d.startup_probe), (ProbeKind.READINESS, d.readiness_probe),
                                (ProbeKind.LIVENESS, d.liveness_probe)):
                if probe is not None:
                    tg.start_soon(self._probe_worker, pod, replica, kind, probe, started_ns, restart)
            if pod.started and d.readiness_probe is None:
                self.set_ready(pod, True, reason="no readinessProbe: ready once started")
            code = await replica.wait()
            self.emit(pod, EventKind.APP_EXITED, exit_code=exit_code_of(code),
                      signal=_signal.Signals(-code).name if code < 0 else None)
            self.set_ready(pod, False, reason="container exited")
            pod.started = False
            with anyio.move_on_after(2):  # the rest of the output, then stop everything else
                await log_done.wait()
            tg.cancel_scope.cancel()
        self.replicas.pop(pod.name, None)
        return how

    # ---- probes ------------------------------------------------------------------------
    async def _probe_worker(self, pod: Pod, replica: Replica, kind: ProbeKind, probe: Probe,
                            started_ns: int, restart: Callable[[str], None]) -> None:
        state = ProbeState(kind, probe)
        t = started_ns
        while replica.running:
            t = next_probe_at(started_ns, t, probe)
            await self._sleep_until(t)
            t += 1
            if not replica.running:
                return
            if kind is ProbeKind.STARTUP and pod.started:
                return
            if kind is not ProbeKind.STARTUP and not pod.started:
                continue
            ok, reason = await run_probe(probe, host=self.host, port_of=self._port_of(pod),
                                         env=self.env_of(pod), cwd=self.cwd, substitute=self._sub(pod))
            if not replica.running:
                return
            if not ok:
                pod.last_probe_failure = f"{kind} probe: {reason}"
                self.emit(pod, EventKind.PROBE_FAILED, probe=str(kind), reason=reason,
                          consecutive=state.consecutive_failures + 1)
            change = state.record(ok)
            if change is None:
                continue
            if kind is ProbeKind.STARTUP:
                if change:
                    pod.started = True
                    self.emit(pod, EventKind.STARTUP_PROBE_OK)
                    if self.deployment.readiness_probe is None:
                        self.set_ready(pod, True, reason="no readinessProbe: ready once started")
                    return
                restart(f"startup probe failed {probe.failure_threshold} times")
                return
            if kind is ProbeKind.READINESS:
                self.set_ready(pod, change, probe="readiness")
            elif not change:
                restart(f"liveness probe failed {probe.failure_threshold} times")
                return

    # ---- termination ---------------------------------------------------------------------
    async def _stop_container(self, pod: Pod, replica: Replica, since_ns: int, reason: str) -> None:
        """preStop, then the stop signal, then SIGKILL at the end of the grace
        period counted from ``since_ns`` (the deletion)."""
        grace_s = self.deployment.termination_grace_period_seconds
        handler = self.deployment.lifecycle.pre_stop
        grace_left = grace_s - (self.clock.now() - since_ns) / 1e9
        if handler is not None and grace_left > 0 and replica.running:
            t0 = self.clock.now()
            self.emit(pod, EventKind.PRESTOP_STARTED, reason=reason, handler=_handler_name(handler))
            result = "ok"
            with anyio.move_on_after(grace_left) as scope:
                result = await self._pre_stop(pod, handler)
            if scope.cancelled_caught:
                result = f"still running when the grace period ({grace_s:g}s) ran out"
            self.emit(pod, EventKind.PRESTOP_FINISHED, result=result, duration_s=round((self.clock.now() - t0) / 1e9, 3))
            grace_left -= (self.clock.now() - t0) / 1e9
        grace_left = max(grace_left, MIN_GRACE_AFTER_PRESTOP_S)
        if not replica.running:
            return
        sig = STOP_SIGNALS[self.stop_signal]
        self.emit(pod, EventKind.SIGTERM_SENT, signal=self.stop_signal, reason=reason,
                  grace_left_s=round(grace_left, 3))
        replica.signal(sig)
        with anyio.move_on_after(grace_left):
            await replica.wait()
            return
        if replica.running:
            self.emit(pod, EventKind.SIGKILL_SENT, reason="grace period over")
            replica.kill()

    async def _pre_stop(self, pod: Pod, handler: LifecycleHandler) -> str:
        if handler.sleep is not None:
            await anyio.sleep(handler.sleep.seconds)
            return "ok"
        if handler.exec is not None:
            ok, why = await run_exec([substitute(a, port=pod.port, pod=pod.name) for a in handler.exec.command],
                                     self.env_of(pod), self.cwd, math.inf)
            return "ok" if ok else why
        assert handler.http_get is not None
        ok, why = await http_get(self.host, self._port_of(pod)(handler.http_get.port), handler.http_get, 3600)
        return "ok" if ok else why

    # ---- the app's own log -----------------------------------------------------------------
    def _app_line(self, pod: Pod, line: str) -> None:
        ev = app_log_event(line, pod=pod.name, from_wall_s=self.clock.from_wall_s)
        if ev is not None:  # the container is this pod's, whatever the line calls itself
            self.events.emit(ev.t_ns, pod.name, ev.kind, SourceKind.APP_LOG, **ev.detail)

    async def teardown(self) -> None:
        """Kill every container now (traffic has stopped): no events."""
        for replica in list(self.replicas.values()):
            replica.kill()
        for replica in list(self.replicas.values()):
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await replica.wait()
        self.replicas.clear()


def _handler_name(h: LifecycleHandler) -> str:
    if h.sleep is not None:
        return f"sleep {h.sleep.seconds:g}s"
    if h.exec is not None:
        return "exec " + " ".join(h.exec.command)
    return f"httpGet {h.http_get.path if h.http_get else ''}"


def raise_if_failed(pods) -> None:
    for pod in pods:
        if pod.failure:
            raise PlatformError(f"pod {pod.name} cannot run: {pod.failure}")
