"""The ingress hop on a cluster: Traefik as an ingress controller in the
run's own namespace (ServiceAccount, Role and RoleBinding as Traefik's
Kubernetes Ingress provider documents them, restricted to that namespace
with ``disableClusterScopeResources``), a NodePort Service for it, and an
Ingress for the run's Service. Traffic enters through the proxy's NodePort;
everything is deleted with the namespace (or one by one, in a shared one).

``IngressView`` reads the running proxy's API (through the same NodePort
Service) and stamps ``endpoint_added`` / ``endpoint_removed`` with detail
``hop: ingress`` when the upstreams it routes to change: the ingress's own
view, measured. The access log is the proxy's stdout, fetched once at the
end and saved to ``<run>/ingress/`` before teardown. It is not followed
during the run: the kubelet serves a followed log by asking the container
runtime for the container's status at every end of file, i.e. for every
line Traefik writes (~500 a second here), and that load on a 2-core node
starved the proxy (docs/ingress.md, "Why the proxy stalled").
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit
from typing import Any, Callable

import yaml

from harness.model.clock import RunClock
from harness.model.events import EventKind, EventWriter, SourceKind
from harness.model.scenario import Scenario
from harness.platforms.ingress import traefik
from harness.platforms.kubernetes.manifests import MANAGED_BY, MANAGER, NAME_LABEL, RUN_LABEL

NAME = "traefik"
IMAGE = f"localhost/rollout-harness-traefik:{traefik.TRAEFIK_VERSION}"
WEB_PORT, API_PORT = 18000, 18001
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: the proxy's pods carry this (not the run label, which selects the app's pods the watches follow)
INGRESS_LABEL = "rollout-harness.io/ingress-of"
#: how often the proxy's API is read (it is a local NodePort; bounded by the run's length)
POLL_S = 0.05

RBAC_RULES = [
    {"apiGroups": [""], "resources": ["services", "endpoints", "secrets"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
    {"apiGroups": ["extensions", "networking.k8s.io"], "resources": ["ingresses", "ingressclasses"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["extensions", "networking.k8s.io"], "resources": ["ingresses/status"], "verbs": ["update"]},
]


def _loopback(url: str | None) -> bool:
    host = urlsplit(url or "").hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


def render(sc: Scenario, *, namespace: str, run_label: str, app_service: str, app_port: int,
           pull_policy: str, api_server: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(resource, object) in creation order.

    ``api_server`` is the URL the harness reaches the API server by. When it
    is the node's loopback (the project's own cluster binds the API server to
    127.0.0.1 only, so pods cannot reach it through the ``kubernetes``
    Service), the proxy runs in the node's network namespace and uses that
    URL with its service-account token; its ports are then bound to the
    pod's (= the node's) IP, never to every address of the host."""
    host_net = _loopback(api_server)
    labels = {NAME_LABEL: NAME, MANAGED_BY: MANAGER, RUN_LABEL: run_label}
    meta = {"name": NAME, "namespace": namespace, "labels": dict(labels)}
    selector = {NAME_LABEL: NAME, INGRESS_LABEL: run_label}
    provider = ["--providers.kubernetesingress=true", f"--providers.kubernetesingress.namespaces={namespace}",
                "--providers.kubernetesingress.disableClusterScopeResources=true"]
    if host_net:
        provider += [f"--providers.kubernetesingress.endpoint={api_server}",
                     f"--providers.kubernetesingress.token={SA_DIR}/token",
                     f"--providers.kubernetesingress.certAuthFilePath={SA_DIR}/ca.crt"]
    bind = "$(POD_IP)" if host_net else ""
    args = traefik.static_args(web=f"{bind}:{WEB_PORT}", api=f"{bind}:{API_PORT}", log_dir=None, provider=provider)
    args += [f"--serversTransport.forwardingTimeouts.{k}={v}"
             for k, v in traefik.forwarding_timeouts(sc.traffic.ingress).items()]
    pod_spec = {
        "serviceAccountName": NAME,
        "terminationGracePeriodSeconds": 5,
        "containers": [{
            "name": NAME, "image": IMAGE, "imagePullPolicy": pull_policy, "args": args,
            "ports": [{"name": "web", "containerPort": WEB_PORT}, {"name": "api", "containerPort": API_PORT}],
            # the probe gates the start; after it, a proxy marked NotReady would take the whole
            # ingress out of the NodePort (seen here at load ~20: /ping over 1 s, 10 probe failures,
            # the client's connections refused), an artefact of the harness, not the system measured
            "readinessProbe": {"httpGet": {"path": "/ping", "port": API_PORT}, "periodSeconds": 1,
                               "timeoutSeconds": 5, "failureThreshold": 30},
            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        }],
    }
    if host_net:
        pod_spec.update(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
    ingress: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {**meta, "name": app_service},
        "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
            "service": {"name": app_service, "port": {"number": app_port}}}}]}}]},
    }
    objects: list[tuple[str, dict[str, Any]]] = []
    if sc.traffic.ingress.retries:
        # the retry middleware comes from a file provider (a ConfigMap), so no CRDs are needed
        middlewares = {"http": {"middlewares": {traefik.RETRY: {"retry": {"attempts": sc.traffic.ingress.retries}}}}}
        objects.append(("configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": dict(meta),
                                       "data": {"middlewares.yaml": yaml.safe_dump(middlewares)}}))
        args += ["--providers.file.directory=/config", "--providers.file.watch=false"]
        pod_spec["volumes"] = [{"name": "config", "configMap": {"name": NAME}}]
        pod_spec["containers"][0]["volumeMounts"] = [{"name": "config", "mountPath": "/config", "readOnly": True}]
        ingress["metadata"]["annotations"] = {"traefik.ingress.kubernetes.io/router.middlewares": f"{traefik.RETRY}@file"}
    return objects + [
        ("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)}),
        ("roles", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": dict(meta),
                   "rules": RBAC_RULES}),
        ("rolebindings", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": dict(meta),
                          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
                          "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}]}),
        ("deployments", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": dict(meta), "spec": {
            "replicas": 1, "selector": {"matchLabels": dict(selector)},
            "template": {"metadata": {"labels": {**selector, MANAGED_BY: MANAGER}}, "spec": pod_spec}}}),
        ("services", {"apiVersion": "v1", "kind": "Service", "metadata": dict(meta), "spec": {
            "type": "NodePort", "selector": dict(selector),
            "ports": [{"name": "web", "port": 80, "targetPort": WEB_PORT},
                      {"name": "api", "port": API_PORT, "targetPort": API_PORT}]}}),
        ("ingresses", ingress),
    ]


def node_ports(service: dict[str, Any]) -> dict[str, int]:
    return {p.get("name", ""): int(p["nodePort"]) for p in service.get("spec", {}).get("ports") or []
            if p.get("nodePort")}


def kube_servers(services: Any) -> set[str] | None:
    """host:port of the servers of the Kubernetes-provided HTTP service(s) in
    one ``/api/http/services`` answer."""
    if not isinstance(services, list):
        return None
    out: set[str] = set()
    for s in services:
        if isinstance(s, dict) and str(s.get("name", "")).endswith("@kubernetes"):
            out |= traefik.api_servers(json.dumps(s).encode()) or set()
    return out


class IngressView(threading.Thread):
    """Polls the proxy's API on ``api_url`` and emits the ingress hop's
    endpoint events; ``pod_of(address)`` names the pod behind an upstream."""

    def __init__(self, *, api_url: str, clock: RunClock, events: EventWriter, pod_of: Callable[[str], str],
                 max_seconds: float):
        super().__init__(name="ingress-view", daemon=True)
        self.api_url, self.clock, self.events, self.pod_of = api_url, clock, events, pod_of
        self.max_seconds = max_seconds
        self.observed: dict[str, str] = {}
        self.polls = 0
        self._halt = threading.Event()

    def visible_pods(self) -> set[str]:
        return set(self.observed.values())

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=2)

    def read(self) -> set[str] | None:
        try:
            with urllib.request.urlopen(self.api_url + "/api/http/services", timeout=1) as r:
                return kube_servers(json.loads(r.read()))
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def run(self) -> None:
        end = time.monotonic() + self.max_seconds
        while not self._halt.is_set() and time.monotonic() < end:
            servers = self.read()
            self.polls += 1
            if servers is not None:
                self.apply(self.clock.now(), servers)
            self._halt.wait(POLL_S)

    def apply(self, now: int, servers: set[str]) -> None:
        for up in sorted(servers - self.observed.keys()):
            pod = self.pod_of(up.rsplit(":", 1)[0]) or ""
            self.observed[up] = pod
            self.events.emit(now, pod, EventKind.ENDPOINT_ADDED, SourceKind.HARNESS, hop="ingress", upstream=up)
        for up in sorted(self.observed.keys() - servers):
            pod = self.observed.pop(up)
            self.events.emit(now, pod, EventKind.ENDPOINT_REMOVED, SourceKind.HARNESS, hop="ingress", upstream=up)


#: Traefik's first lines on stdout include this one (its version at start-up): a log fetched
#: without it lost its beginning to the kubelet's rotation (containerLogMaxSize)
STARTUP_MARK = '"Traefik version '


def rotated_away(text: str) -> bool:
    """True when the proxy's stdout fetched at the end no longer starts at
    the proxy's start: the kubelet rotated the container's log
    (containerLogMaxSize, 10 MiB by default; the project's cluster keeps
    100 MiB, cluster/config/kubelet.yaml.tmpl) and the access lines of the
    first requests are gone (they show as not logged)."""
    return bool(text) and STARTUP_MARK not in text
