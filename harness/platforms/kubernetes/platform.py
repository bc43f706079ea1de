"""The kubernetes platform: a real rolling update on any cluster, with the pod
lifecycle as the cluster reports it, on the run clock.

Managed mode renders the scenario into a Deployment, a Service (NodePort by
default: traffic enters through kube-proxy, as users' traffic does) and a
PodDisruptionBudget, in a namespace of its own that teardown deletes.
Target mode takes an existing Deployment and the URL its traffic enters by,
and never creates or deletes anything.

The kubernetes client is synchronous: every API call runs in a worker
thread (``anyio.to_thread``) so the event loop, which also drives the
traffic engine, never blocks; the watches and log streams run in daemon
threads that stamp what they see with the run clock on arrival and write it
through the (thread-safe) EventWriter.
"""

from __future__ import annotations

import atexit
import functools
import logging
import secrets
from pathlib import Path
from typing import Any, Callable

import anyio

from harness.errors import ObservationIncomplete, PlatformError
from harness.model.clock import RunClock
from harness.model.events import EventKind as K
from harness.model.events import EventWriter, SourceKind
from harness.model.ingresslog import ACCESS_LOG, INGRESS_DIR, PROXY_LOG
from harness.model.rundir import LOGS_DIR, update_manifest
from harness.model.scenario import Scenario
from harness.platforms.kubernetes import apitime, ingress as ingress_mod, manifests, preflight
from harness.platforms.kubernetes.client import KubeApi, KubeError, load_api
from harness.platforms.kubernetes.deploy import POLL_S, ClusterDeployment
from harness.platforms.kubernetes.endpointtrack import EndpointTracker
from harness.platforms.kubernetes.eventtrack import EventTracker
from harness.platforms.kubernetes.podlogs import LogFollower
from harness.platforms.kubernetes.podtrack import PodTracker, Step
from harness.platforms.kubernetes.watch import ResourceWatch

log = logging.getLogger(__name__)

RAW_WATCH_FILE = "kube-watch.jsonl"
#: a deleted pod must be seen to end within its grace period plus this (the
#: kubelet's SIGKILL, the container runtime and the watch all take a moment)
END_MARGIN_S = 15.0


class KubernetesPlatform(ClusterDeployment):
    """The Platform seam and the observation (watches, log followers,
    teardown); deploying and following a rollout are ``ClusterDeployment``'s
    (deploy.py)."""

    name = "kubernetes"

    def __init__(self, scenario: Scenario, run_dir: str | Path, clock: RunClock, events: EventWriter,
                 *, api: KubeApi | None = None):
        self.sc, self.run_dir, self.clock, self.events = scenario, Path(run_dir), clock, events
        self.kube = scenario.kubernetes
        self.api: KubeApi | None = api
        self.mode = self.kube.mode
        # the run dir's name plus a random suffix: two runs into dirs of the same
        # name (--out .../run) must never share a namespace or a run label
        self.run_id = f"{self.run_dir.name}-{secrets.token_hex(3)}"
        self.run_label = manifests.run_label_value(self.run_id)
        self.namespace = ""
        self.deployment = scenario.deployment.name
        self.container = manifests.CONTAINER
        self._owns_namespace = False
        self._created: list[tuple[str, str]] = []  # (resource, name) created in an existing namespace
        self._url = ""
        self._watches: list[ResourceWatch] = []
        self._followers: dict[tuple[str, str], LogFollower] = {}
        self._record = None
        self._torn_down = False
        self._rollouts = 0  # disrupt() calls so far (run --repeat rolls one Deployment out again)
        self._notes: list[str] = []
        self._changes: list[str] = []  # what applying the user's manifests changed in them
        self._progress = ""
        self.pods = PodTracker(clock=clock, on_container_started=self._follow_logs)
        self.endpoints = EndpointTracker(clock=clock)
        #: traffic.via: ingress -- the proxy's own view of the endpoints (a polling thread)
        self.ingress_view: ingress_mod.IngressView | None = None
        self.pod_selector = ""
        self._workload: dict[str, Any] = {}
        self._service = ""  # managed mode: the app's Service (traffic.generators target it)

    # ---- the seam -----------------------------------------------------------
    async def __aenter__(self) -> "KubernetesPlatform":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.teardown()

    def target_url(self) -> str:
        """Where traffic enters the cluster (kubernetes.url) plus traffic.path."""
        return self._url.rstrip("/") + self.sc.traffic.path if self._url else ""

    def resolver(self):
        return None  # the engine connects to the URL; kube-proxy picks the pod

    @property
    def repeatable_disrupt(self) -> bool:
        """run --repeat rolls one Deployment out again and again (each later
        rollout also sets the restart annotation, as `kubectl rollout
        restart` does); a drain leaves its nodes cordoned, and the ingress
        proxy's access log is read at teardown: a Deployment per rollout."""
        return self.sc.disruption.type in ("rollingUpdate", "restart") and self.sc.traffic.via != "ingress"

    def describe(self) -> dict[str, Any]:
        """For the run manifest: where the run happened and what the watches saw."""
        return {"platform": self.name, "mode": self.mode, "namespace": self.namespace,
                "deployment": self.deployment, "url": self._url, "rounding": self._notes,
                "manifest_changes": self._changes,
                "watch_stats": {w.resource: dict(w.stats) for w in self._watches},
                "logs_followed": len(self._followers),
                **({"ingress": {"proxy": "traefik", "image": ingress_mod.IMAGE, "provider": "kubernetesingress",
                                "polls": self.ingress_view.polls}} if self.ingress_view is not None else {})}

    async def generator_job(self):
        """traffic.generators: the generator Job's handle and the in-cluster URL
        the generators send to (harness.fleet runs them)."""
        from harness.platforms.kubernetes.generators import target_url
        from harness.platforms.kubernetes.genpods import GeneratorJob

        gen = self.sc.traffic.generators
        note = await self._call(preflight.check_image, self.api, gen.image, self.kube.image_pull_policy)
        log.info("kubernetes preflight (generator image): %s", note)
        svc = await self._call(self.api.get, "services", self.namespace, self._service)
        ing = (await self._call(self.api.get, "services", self.namespace, ingress_mod.NAME)
               if gen.target == "ingress" else None)
        url = target_url(gen, service=svc, ingress=ing, path=self.sc.traffic.path)
        return GeneratorJob(self.api, self.namespace, self.run_label), url

    def rollout_state(self) -> str:
        """One line for the live progress display."""
        return self._progress

    async def deploy(self) -> None:
        if self.api is None:
            self.api = await self._call(load_api, kubeconfig=self.kube.kubeconfig, context=self.kube.context)
        context = getattr(self.api, "context", self.kube.context or "")
        version = await self._call(preflight.check_api, self.api, context=context)
        if self.mode == "target":
            await self._deploy_target()
        else:
            await self._deploy_managed()
        update_manifest(self.run_dir, kubernetes={
            "context": context, "server": getattr(self.api, "server", ""),
            "server_version": version.get("gitVersion", ""), "mode": self.mode,
            "namespace": self.namespace, "deployment": self.deployment, "url": self._url,
            "namespace_per_run": self._owns_namespace, "run_label": self.run_label,
            "rounding": self._notes, "manifest_changes": self._changes, "workload": self._workload})

    async def disrupt(self) -> None:
        """Trigger the rollout; return once it is complete and every pod it
        deleted has been seen to end (the observation window closes only
        then: a pod still in its preStop can still drop requests)."""
        if self.sc.disruption.type in ("drain", "evict"):
            from harness.platforms.kubernetes.drain import drain_on_cluster

            await drain_on_cluster(self)
            return
        old = self.pods.live_pods()
        since = self.clock.now()
        patch = manifests.rollout_patch(self.sc, container=self.container, now_rfc3339=apitime.rfc3339_now(),
                                        again=self._rollouts > 0)
        self._rollouts += 1
        self.events.emit(self.clock.now(), "", K.ROLLOUT_STARTED, SourceKind.HARNESS,
                         type=self.sc.disruption.type, patch=patch)
        dep = await self._call(self.api.patch, "deployments", self.namespace, self.deployment, patch)
        generation = int(dep.get("metadata", {}).get("generation") or 0)
        state = await self._follow_rollout(min_generation=generation)
        self.events.emit(self.clock.now(), "", K.ROLLOUT_COMPLETE, SourceKind.HARNESS,
                         updated=state.updated, available=state.available, replicas=state.desired,
                         replica_set=await self._new_replica_set())
        await self._until_deleted_pods_ended(old, since)

    async def _until_deleted_pods_ended(self, old: set[str], since_ns: int) -> None:
        """Wait until every old pod, and every pod deleted since ``since_ns``,
        has ended; a pod that does not within its grace period + END_MARGIN_S
        makes the run inconclusive (PlatformError naming it)."""
        complete_ns = self.clock.now()
        grace_default = float(self._workload.get("termination_grace_period_seconds")
                              or self.sc.deployment.termination_grace_period_seconds)
        while True:
            ends = self.pods.terminations()
            waiting = []
            for name in sorted(old | {n for n, t in ends.items()
                                      if t.deletion_seen_ns is not None and t.deletion_seen_ns >= since_ns}):
                t = ends.get(name)
                if t is not None and t.ended:
                    continue
                start = t.deletion_seen_ns if t is not None and t.deletion_seen_ns is not None else complete_ns
                grace = t.grace_s if t is not None and t.grace_s is not None else grace_default
                waiting.append((name, start, grace))
            if not waiting:
                return
            now = self.clock.now()
            self._progress = f"rolled out; waiting for {len(waiting)} deleted pod(s) to end ({waiting[0][0]})"
            for name, start, grace in waiting:
                if now - start > (grace + END_MARGIN_S) * 1e9:
                    seen = "its deletion was seen" if start != complete_ns else "the rollout completed"
                    raise ObservationIncomplete(
                        f"kubernetes: pod {name} was not seen to end within its grace period ({grace:g} s) "
                        f"+ {END_MARGIN_S:g} s after {seen}: the run did not observe its whole termination")
            await anyio.sleep(POLL_S)

    async def teardown(self) -> None:
        if self._torn_down:
            return
        self._torn_down = True
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._teardown_sync)

    # ---- observation --------------------------------------------------------
    async def _start_watches(self, *, pod_selector: str, service: str | None,
                             accept_pod: Callable[[str], bool]) -> None:
        self.pod_selector = pod_selector
        self._record = open(self.run_dir / RAW_WATCH_FILE, "a", encoding="utf-8", buffering=1)
        kube_sink = self._sink(SourceKind.KUBE_WATCH)
        since = self.clock.to_wall_ns(0) - 2_000_000_000  # Events carry whole seconds
        event_tracker = EventTracker(has_prestop=self.pods.has_prestop, since_wall_ns=since,
                                     accept_pod=accept_pod, clock=self.clock)
        specs: list[tuple[str, Any, str | None]] = [("pods", self.pods, pod_selector),
                                                    ("events", event_tracker, None)]
        if service:
            specs.append(("endpointslices", self.endpoints, f"kubernetes.io/service-name={service}"))
        for resource, tracker, selector in specs:
            w = ResourceWatch(self.api, resource, self.namespace, tracker, kube_sink, self.clock.now,
                              label_selector=selector, record=self._record)
            self._watches.append(w.start())
        with anyio.fail_after(30):
            for w in self._watches:
                while not w.listed.is_set():
                    if w.error is not None and isinstance(w.error, KubeError) and w.error.status == 403:
                        raise PlatformError(f"kubernetes: cannot watch {w.resource}: {w.error}")
                    await anyio.sleep(0.05)


    # ---- threads ------------------------------------------------------------
    async def _call(self, fn, *args, **kwargs):
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    def _sink(self, source: SourceKind) -> Callable[[int, Step], None]:
        def emit(t_ns: int, step: Step) -> None:
            self.events.emit(t_ns if step.at_ns is None else step.at_ns, step.pod, step.kind, source, **step.detail)
        return emit

    def _follow_logs(self, pod: str, container: str) -> None:
        if self._torn_down or container != self.container or self.api is None:
            return
        old = self._followers.get((pod, container))
        if old is not None:
            old.stop(timeout=0)
        self._followers[(pod, container)] = LogFollower(
            self.api, self.namespace, pod, container, self.run_dir / LOGS_DIR, self._sink(SourceKind.APP_LOG),
            self.clock.from_wall_s, still_running=lambda: self.pods.container_running(pod, container),
        ).start()

    def _teardown_sync(self) -> None:
        atexit.unregister(self._teardown_sync)
        for f in list(self._followers.values()):
            f.join(timeout=1.0)  # a pod still shutting down finishes its last lines
            f.stop(timeout=1.0)
        for w in self._watches:
            w.stop(timeout=2.0)
        if self.ingress_view is not None:
            self.ingress_view.stop()
            self._save_ingress_logs()
        for w in self._watches:
            log.info("watch %s: %s", w.resource, w.stats)
        if self.api is not None and self.sc.disruption.type == "drain":
            self._uncordon_left()
        if self.api is not None and self.mode == "managed":
            self._delete_created()
        if self._record is not None:
            self._record.close()

    def _save_ingress_logs(self) -> None:
        """The proxy's stdout (access log and debug log, JSON lines) into <run>/ingress/."""
        out = self.run_dir / INGRESS_DIR
        out.mkdir(parents=True, exist_ok=True)
        try:
            pods, _ = self.api.list("pods", self.namespace,
                                    label_selector=f"{ingress_mod.INGRESS_LABEL}={self.run_label}")
            text = "".join(self.api.pod_log_text(self.namespace, p["metadata"]["name"], ingress_mod.NAME)
                           for p in pods)
        except KubeError as exc:
            log.warning("kubernetes: could not read the ingress proxy's log: %s", exc)
            text = ""
        if ingress_mod.rotated_away(text):
            log.warning("kubernetes: the ingress proxy's log lost its beginning to the kubelet's log rotation "
                        "(containerLogMaxSize): the first requests show as not logged by the proxy; raise the "
                        "node's containerLogMaxSize (the project's cluster keeps 100 MiB)")
        access = [x for x in text.splitlines() if '"DownstreamStatus"' in x]
        (out / ACCESS_LOG).write_text("".join(f"{x}\n" for x in access), encoding="utf-8")
        (out / PROXY_LOG).write_text(text, encoding="utf-8")

    def _uncordon_left(self) -> None:
        """Nodes still marked as cordoned by this run (a drain cut short before
        its own uncordon): give them back (harness.platforms.kubernetes.drain)."""
        from harness.platforms.kubernetes.drain import uncordon_marked

        try:
            done = uncordon_marked(self.api, self.run_label)
        except KubeError as exc:
            log.warning("kubernetes: could not check for nodes this run left cordoned: %s "
                        "(`rollout-harness cleanup` uncordons them)", exc)
            return
        for node, _, error in done:
            if error:
                log.warning("kubernetes: could not uncordon %s: %s (`rollout-harness cleanup` retries)", node, error)
            else:
                log.warning("kubernetes: uncordoned %s, left cordoned by this run's drain", node)

    def _delete_created(self) -> None:
        try:
            if self._owns_namespace and self.namespace:
                self.api.delete_namespace(self.namespace)
            else:
                for resource, name in reversed(self._created):
                    self.api.delete(resource, self.namespace, name)
        except KubeError as exc:
            if exc.status != 404:
                log.warning("kubernetes: could not delete what this run created in %s: %s "
                            "(`rollout-harness cleanup` removes leftovers)", self.namespace, exc)
