"""Traefik as the cluster's ingress controller: the objects a run creates and
the ingress's own view of the endpoints, read from the proxy's API."""

from __future__ import annotations

import json

from harness.model.clock import RunClock
from harness.model.events import EventWriter, read_events
from harness.model.scenario import Scenario
from harness.platforms.kubernetes import ingress
from harness.platforms.kubernetes.manifests import MANAGED_BY, RUN_LABEL


def scenario(**ingress_opts) -> Scenario:
    return Scenario.model_validate({"name": "t", "traffic": {"via": "ingress", "ingress": ingress_opts}})


def test_render_creates_rbac_deployment_nodeport_and_an_ingress_for_the_run_service():
    objs = ingress.render(scenario(), namespace="ns1", run_label="run1", app_service="api", app_port=8080, pull_policy="Never")
    kinds = [r for r, _ in objs]
    assert kinds == ["serviceaccounts", "roles", "rolebindings", "deployments", "services", "ingresses"]
    by = dict(objs)
    for _, o in objs:  # cleanup finds them by label in a shared namespace
        assert o["metadata"]["namespace"] == "ns1"
        assert o["metadata"]["labels"][RUN_LABEL] == "run1" and o["metadata"]["labels"][MANAGED_BY]
    tmpl = by["deployments"]["spec"]["template"]
    assert RUN_LABEL not in tmpl["metadata"]["labels"]  # the run's pod watch follows the app only
    c = tmpl["spec"]["containers"][0]
    assert c["image"] == ingress.IMAGE and c["imagePullPolicy"] == "Never"
    assert "--providers.kubernetesingress.namespaces=ns1" in c["args"]
    assert "--providers.kubernetesingress.disableClusterScopeResources=true" in c["args"]
    assert "--serversTransport.forwardingTimeouts.idleConnTimeout=90000ms" in c["args"]
    assert "--serversTransport.forwardingTimeouts.dialTimeout=30000ms" in c["args"]
    assert not any("responseHeaderTimeout" in a for a in c["args"])
    # a slow /ping under load must not take the proxy out of its NodePort in mid-run
    assert c["readinessProbe"]["timeoutSeconds"] >= 5 and c["readinessProbe"]["failureThreshold"] >= 30
    assert "hostNetwork" not in tmpl["spec"] and "--entryPoints.web.address=:18000" in c["args"]
    assert not any(a.startswith("--accessLog.filePath") for a in c["args"])  # stdout: the pod's log
    assert by["services"]["spec"]["type"] == "NodePort"
    assert {p["name"] for p in by["services"]["spec"]["ports"]} == {"web", "api"}
    backend = by["ingresses"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "api", "port": {"number": 8080}}  # the Service's own port, not 80
    assert by["rolebindings"]["subjects"][0] == {"kind": "ServiceAccount", "name": "traefik", "namespace": "ns1"}


def test_retries_come_from_a_file_provider_configmap():
    objs = dict(ingress.render(scenario(retries=2), namespace="ns1", run_label="r", app_service="api", app_port=8080,
                               pull_policy="IfNotPresent"))
    assert "attempts: 2" in objs["configmaps"]["data"]["middlewares.yaml"]
    assert objs["ingresses"]["metadata"]["annotations"] == {"traefik.ingress.kubernetes.io/router.middlewares": "retry@file"}
    assert "--providers.file.directory=/config" in objs["deployments"]["spec"]["template"]["spec"]["containers"][0]["args"]


def test_kube_servers_reads_only_kubernetes_services():
    answer = [{"name": "api@internal"},
              {"name": "ns1-api-80@kubernetes", "loadBalancer": {"servers": [{"url": "http://198.18.128.5:8080"}]}}]
    assert ingress.kube_servers(answer) == {"198.18.128.5:8080"}
    assert ingress.kube_servers({"error": "x"}) is None


def test_a_fenced_server_is_not_routed_to():
    """Traefik keeps a terminating, still-serving endpoint as a fenced server:
    listed by its API, but given no new requests (seen on the cluster: the
    ingress 'lag' was the pod's whole termination until this was read)."""
    answer = [{"name": "ns1-api-8080@kubernetes", "loadBalancer": {"servers": [
        {"url": "http://198.18.128.5:8080", "fenced": True}, {"url": "http://198.18.128.6:8080"}]}}]
    assert ingress.kube_servers(answer) == {"198.18.128.6:8080"}


def test_the_view_emits_ingress_hop_events(tmp_path):
    events = EventWriter(tmp_path / "events.jsonl")
    view = ingress.IngressView(api_url="http://127.0.0.1:1", clock=RunClock.start(), events=events,
                               pod_of={"198.18.128.5": "api-1", "198.18.128.6": "api-2"}.get, max_seconds=1)
    view.apply(10, {"198.18.128.5:8080", "198.18.128.6:8080"})
    view.apply(20, {"198.18.128.6:8080"})
    view.apply(30, {"198.18.128.6:8080"})
    events.close()
    got = [(e["t_ns"], e["pod"], e["kind"], e["detail"]["hop"]) for e in read_events(tmp_path)]
    assert got == [(10, "api-1", "endpoint_added", "ingress"), (10, "api-2", "endpoint_added", "ingress"),
                   (20, "api-1", "endpoint_removed", "ingress")]
    assert view.visible_pods() == {"api-2"}


def test_an_api_server_on_the_node_loopback_puts_the_proxy_in_the_node_network():
    objs = dict(ingress.render(scenario(), namespace="ns1", run_label="r", app_service="api", app_port=8080, pull_policy="Never",
                               api_server="https://127.0.0.1:16443"))
    spec = objs["deployments"]["spec"]["template"]["spec"]
    args = spec["containers"][0]["args"]
    assert spec["hostNetwork"] is True and spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert "--providers.kubernetesingress.endpoint=https://127.0.0.1:16443" in args
    assert "--providers.kubernetesingress.token=/var/run/secrets/kubernetes.io/serviceaccount/token" in args
    # bound to the pod's (= node's) IP only, never to every address of the host
    assert "--entryPoints.web.address=$(POD_IP):18000" in args


def test_the_view_thread_starts_and_stops(tmp_path):
    events = EventWriter(tmp_path / "events.jsonl")
    view = ingress.IngressView(api_url="http://127.0.0.1:9", clock=RunClock.start(), events=events,
                               pod_of=lambda a: "", max_seconds=30)
    view.start()
    view.stop()
    assert not view.is_alive() and view.polls >= 1


def test_a_proxy_log_without_its_start_up_lines_was_rotated_away():
    """The log is fetched once at the end; the kubelet's rotation
    (containerLogMaxSize) would have cut its beginning: that is told, not
    silently taken as the whole log."""
    start = json.dumps({"level": "info", "message": "Traefik version v3.6.12 built on I don't remember exactly"})
    access = json.dumps({"DownstreamStatus": 200, "request_X-Request-Id": "7"})
    assert not ingress.rotated_away(start + "\n" + access + "\n")
    assert ingress.rotated_away(access + "\n")
    assert not ingress.rotated_away("")  # nothing fetched: not a rotation (the fetch failed, said elsewhere)


class LogApi:
    """The proxy's pod and its whole log so far (no follow: pod_log is not there)."""

    def __init__(self, text):
        self.text, self.fetched = text, []

    def list(self, resource, namespace, *, label_selector=None):
        return [{"metadata": {"name": "traefik-abc"}}], "1"

    def pod_log_text(self, namespace, pod, container):
        self.fetched.append((namespace, pod, container))
        return self.text


def save_logs(tmp_path, text):
    from types import SimpleNamespace
    from harness.platforms.kubernetes.platform import KubernetesPlatform

    api = LogApi(text)
    KubernetesPlatform._save_ingress_logs(SimpleNamespace(run_dir=tmp_path, api=api, namespace="ns",
                                                          run_label="run-1"))
    return api


def test_the_proxy_log_is_fetched_once_at_the_end_into_the_run_dir(tmp_path, caplog):
    start = json.dumps({"level": "info", "message": "Traefik version v3.6.12 built on I don't remember exactly"})
    access = [json.dumps({"DownstreamStatus": 200, "request_X-Request-Id": str(i)}) for i in range(3)]
    text = "".join(x + "\n" for x in [start, *access])
    api = save_logs(tmp_path, text)
    assert api.fetched == [("ns", "traefik-abc", "traefik")]
    assert (tmp_path / "ingress" / "access.log").read_text().splitlines() == access
    assert (tmp_path / "ingress" / "traefik.log").read_text() == text
    assert "rotation" not in caplog.text


def test_a_rotated_proxy_log_is_saved_and_said(tmp_path, caplog):
    access = json.dumps({"DownstreamStatus": 200, "request_X-Request-Id": "9000"})
    save_logs(tmp_path, access + "\n")
    assert (tmp_path / "ingress" / "access.log").read_text().splitlines() == [access]
    assert "log rotation (containerLogMaxSize)" in caplog.text
