"""The kubernetes platform's deploying side: the run's objects created (managed
mode: the scenario rendered, or the user's manifests as given; target mode:
the existing Deployment read), the ingress proxy put in front when asked,
"ready before any load", and a rollout followed until kubectl would call it
complete. Split from platform.py, which keeps the Platform seam and the
observation (watches, log followers, teardown); ``ClusterDeployment`` is a
mixin of ``KubernetesPlatform`` and works on its fields.
"""

from __future__ import annotations

import atexit
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import anyio

from harness.errors import BadInput, PlatformError
from harness.model.rundir import update_manifest
from harness.model.workload import workload_of
from harness.platforms.kubernetes import apply, ingress as ingress_mod, manifests, preflight
from harness.platforms.kubernetes.client import KubeError
from harness.platforms.kubernetes.podtrack import IMAGE_PROBLEMS
from harness.platforms.kubernetes.rollout import Phase, rollout_state
from harness.platforms.kubernetes.workload import workload_facts

log = logging.getLogger(__name__)

#: how often the Deployment is read while waiting for it
POLL_S = 0.25
#: how long a Service whose pinned nodePort is "already allocated" is retried:
#: the previous run's namespace is deleted in the background, its Service with it
NODE_PORT_WAIT_S = 60.0


class ClusterDeployment:
    """deploy (managed or target), wait until ready, follow a rollout; the
    API calls go through the platform's ``_call`` (a worker thread)."""

    # ---- deploy -------------------------------------------------------------
    async def _deploy_managed(self) -> None:
        kube, api = self.kube, self.api
        self._owns_namespace = kube.namespace is None
        self.namespace = kube.namespace or manifests.namespace_name(kube.namespace_prefix, self.run_id)
        await self._call(preflight.check_access, api, self.namespace, mode="managed",
                         per_run_namespace=self._owns_namespace, drain=self.sc.disruption.type in ("drain", "evict"),
                         cordon=self.sc.disruption.type == "drain",
                         generators=self.sc.traffic.generators is not None)
        image_note = await self._call(preflight.check_image, api, self.sc.app.image, kube.image_pull_policy)
        log.info("kubernetes preflight: %s", image_note)
        prepared = self._prepare()
        if self._owns_namespace:
            await self._call(api.create_namespace, prepared.namespace)
            atexit.register(self._teardown_sync)
        # recorded at once, so a run killed while deploying still names what it left
        update_manifest(self.run_dir, kubernetes={"namespace": self.namespace, "run_label": self.run_label,
                                                  "manifest_changes": self._changes})
        await self._start_watches(pod_selector=prepared.run_selector, service=prepared.service,
                                  accept_pod=lambda name: name.startswith(f"{self.deployment}-"))
        for resource, obj in prepared.objects:
            await self._create(resource, obj)
            self._created.append((resource, obj["metadata"]["name"]))
        self._workload = workload_facts(dict(prepared.objects)["deployments"], self.container)
        svc = await self._call(api.get, "services", self.namespace, prepared.service)
        self._service = prepared.service  # traffic.generators target it from inside
        node_port = (svc.get("spec", {}).get("ports") or [{}])[0].get("nodePort")
        self._url = kube.url.format(node_port=node_port or "")
        if self.sc.traffic.via == "ingress":
            # the Ingress names the Service's own port (the app's containerPort, not 80)
            await self._deploy_ingress(prepared.service, int((svc.get("spec", {}).get("ports") or [{}])[0]["port"]))
        await self._wait_ready()

    async def _deploy_ingress(self, app_service: str, app_port: int) -> None:
        """Traefik in front of the run's Service; traffic enters by its NodePort."""
        for resource, obj in ingress_mod.render(self.sc, namespace=self.namespace, run_label=self.run_label,
                                                app_service=app_service, app_port=app_port,
                                                pull_policy=self.kube.image_pull_policy,
                                                api_server=getattr(self.api, "server", None)):
            await self._call(self.api.create, resource, self.namespace, obj)
            self._created.append((resource, obj["metadata"]["name"]))
        svc = await self._call(self.api.get, "services", self.namespace, ingress_mod.NAME)
        ports = ingress_mod.node_ports(svc)
        self._url = self.kube.url.format(node_port=ports.get("web", ""))
        host = urlsplit(self._url).hostname or "127.0.0.1"
        self.ingress_view = ingress_mod.IngressView(
            api_url=f"http://{host}:{ports.get('api', '')}", clock=self.clock, events=self.events,
            pod_of=self.endpoints.pod_at, max_seconds=3600)
        self.ingress_view.start()

    def _prepare(self) -> apply.Prepared:
        """The objects of this run: the user's manifests as given (changes
        listed), or the scenario's deployment: rendered."""
        wl = workload_of(self.sc)
        if wl.from_manifests:
            self.container = wl.container
            prepared = apply.prepare(self.sc, wl, namespace=self.namespace, run_id=self.run_id)
            self._changes = prepared.changes
            return prepared
        rendered = manifests.render(self.sc, namespace=self.namespace, run_id=self.run_id)
        self._notes = rendered.notes
        objects = [(r, o) for r, o in (("deployments", rendered.deployment), ("services", rendered.service),
                                       ("poddisruptionbudgets", rendered.pdb)) if o is not None]
        selector = rendered.deployment["spec"]["selector"]["matchLabels"][manifests.RUN_LABEL]
        return apply.Prepared(namespace=rendered.namespace, objects=objects, service=self.deployment,
                              run_selector=f"{manifests.RUN_LABEL}={selector}", changes=[])

    async def _create(self, resource: str, obj: dict[str, Any]) -> None:
        """Create one object. A Service whose pinned nodePort is still held
        (by the Service of a run whose namespace is being deleted, e.g. the
        run before on a kind cluster) is retried for NODE_PORT_WAIT_S."""
        deadline = time.monotonic() + NODE_PORT_WAIT_S
        while True:
            try:
                await self._call(self.api.create, resource, self.namespace, obj)
                return
            except KubeError as exc:
                if resource != "services" or exc.status != 422 or "already allocated" not in str(exc):
                    raise
                port = self.kube.node_port
                if time.monotonic() >= deadline:
                    raise PlatformError(
                        f"kubernetes.nodePort {port}: still allocated after {NODE_PORT_WAIT_S:g} s: another "
                        f"Service holds it (`kubectl get svc -A | grep {port}`; a run's leftovers: "
                        f"`rollout-harness cleanup`), or set another kubernetes.nodePort") from exc
                log.info("kubernetes: nodePort %s still allocated (a Service being deleted?), retrying", port)
                await anyio.sleep(1.0)

    async def _deploy_target(self) -> None:
        target, api = self.kube.target, self.api
        assert target is not None
        self.namespace, self.deployment, self._url = target.namespace, target.deployment, target.url
        await self._call(preflight.check_access, api, self.namespace, mode="target", per_run_namespace=False,
                         drain=self.sc.disruption.type in ("drain", "evict"),
                         cordon=self.sc.disruption.type == "drain")
        try:
            dep = await self._call(api.get, "deployments", self.namespace, self.deployment)
        except KubeError as exc:
            if exc.status == 404:
                raise BadInput(f"kubernetes.target: no Deployment {self.deployment!r} in namespace "
                               f"{self.namespace!r}") from exc
            raise
        self._read_live(dep)
        tmpl = dep.get("spec", {}).get("template", {})
        self.container = ((tmpl.get("spec", {}).get("containers") or [{}])[0]).get("name", "")
        self._workload = workload_facts(dep, self.container)
        match = dep.get("spec", {}).get("selector", {}).get("matchLabels") or {}
        if not match:
            raise BadInput(f"kubernetes.target: Deployment {self.deployment!r} has no selector.matchLabels")
        selector = ",".join(f"{k}={v}" for k, v in sorted(match.items()))
        service = await self._find_service(tmpl.get("metadata", {}).get("labels") or {})
        await self._start_watches(pod_selector=selector, service=service,
                                  accept_pod=lambda name: name in self.pods.live_pods()
                                  or name.startswith(f"{self.deployment}-"))
        await self._wait_ready()

    def _read_live(self, dep: dict[str, Any]) -> None:
        """The live Deployment through the workload model, so the diagnosis
        uses its real grace period, preStop, probes and strategy."""
        live, record = apply.read_live(dep, source=f"live Deployment {self.namespace}/{self.deployment}")
        if live is not None:
            live.pod_disruption_budget = self.sc.deployment.pod_disruption_budget
            self.sc.deployment = live
        update_manifest(self.run_dir, scenario=self.sc.dump(), live_deployment=record)

    async def _find_service(self, pod_labels: dict[str, str]) -> str | None:
        """The Service whose selector picks the Deployment's pods (the one
        whose NodePort the URL uses, when several do)."""
        services, _ = await self._call(self.api.list, "services", self.namespace)
        port = urlsplit(self._url).port
        matching = [s for s in services if (sel := s.get("spec", {}).get("selector") or {})
                    and all(pod_labels.get(k) == v for k, v in sel.items())]
        for s in matching:
            if any(p.get("nodePort") == port for p in s.get("spec", {}).get("ports") or []):
                return s["metadata"]["name"]
        return matching[0]["metadata"]["name"] if matching else None

    async def _wait_ready(self) -> None:
        """All replicas available and all in the Service's endpoints, before
        any load (the runner then checks that the target serves)."""
        deadline = time.monotonic() + self.sc.deployment.progress_deadline_seconds + 30
        want = self.sc.deployment.replicas if self.mode == "managed" else None
        message = ""
        while time.monotonic() < deadline:
            problems = self.pods.waiting_problems()
            if problems:
                pod, why = next(iter(problems.items()))
                cls = BadInput if why.split(":")[0] in IMAGE_PROBLEMS else PlatformError
                raise cls(f"kubernetes: pod {pod} cannot start: {why}"
                          + (" (load the image: `make kind-load`, or check kubernetes.imagePullPolicy)"
                             if cls is BadInput else ""))
            dep = await self._call(self.api.get, "deployments", self.namespace, self.deployment)
            state = rollout_state(dep)
            if state.phase is Phase.STUCK:
                raise PlatformError(f"kubernetes: Deployment {self.deployment} is not healthy: {state.message}")
            want_n = want or state.desired
            routable = len(self.endpoints.routable_pods()) if any(
                w.resource == "endpointslices" for w in self._watches) else want_n
            message = f"{state.message}; {routable}/{want_n} endpoints ready"
            if self.ingress_view is not None:
                seen = len(self.ingress_view.visible_pods() - {""})
                message += f"; the ingress routes to {seen}/{want_n}"
                routable = min(routable, seen)
            self._progress = message
            if state.phase is Phase.COMPLETE and state.available >= want_n and routable >= want_n:
                return  # whether it serves is the runner's one check, through the NodePort (traffic.preflight)
            await anyio.sleep(POLL_S)
        raise PlatformError(f"kubernetes: not ready before the deadline: {message}")

    # ---- rollout ------------------------------------------------------------
    async def _follow_rollout(self, *, min_generation: int):
        stall_s = self.sc.deployment.progress_deadline_seconds + 10
        last_counts, last_change = None, time.monotonic()
        while True:
            dep = await self._call(self.api.get, "deployments", self.namespace, self.deployment)
            state = rollout_state(dep, min_generation=min_generation)
            self._progress = (f"rollout: {state.message} ({state.updated}/{state.desired} updated, "
                              f"{len(self.endpoints.routable_pods())} endpoints ready)")
            if state.phase is Phase.COMPLETE:
                return state
            if state.phase is Phase.STUCK:
                raise PlatformError(f"kubernetes: rollout of {self.deployment} stuck: {state.message}")
            counts = state[2:]
            if counts != last_counts:
                last_counts, last_change = counts, time.monotonic()
            elif time.monotonic() - last_change > stall_s:
                raise PlatformError(f"kubernetes: rollout of {self.deployment} made no progress for "
                                    f"{stall_s:g}s: {state.message}")
            await anyio.sleep(POLL_S)

    async def _new_replica_set(self) -> str:
        try:
            sets, _ = await self._call(self.api.list, "replicasets", self.namespace)
        except KubeError:
            return ""
        mine = [rs for rs in sets if any(o.get("name") == self.deployment
                                         for o in rs.get("metadata", {}).get("ownerReferences") or [])]
        mine.sort(key=lambda rs: int(rs.get("metadata", {}).get("annotations", {})
                                     .get("deployment.kubernetes.io/revision", 0)))
        return mine[-1]["metadata"]["name"] if mine else ""
