"""The one seam between the harness and a Kubernetes API server.

Everything the platform does to a cluster goes through ``KubeApi``: a narrow
protocol over raw JSON objects, exactly as the API serves them. Raw objects
keep every field and timestamp (the generated models drop unknown fields and
parse times), and recorded watch streams replay through a fake in tests, so
no test needs a cluster.

``RestKube`` implements it with the official ``kubernetes`` client's
configuration loading, auth and connection pool, calling the REST paths
directly. Every ``ApiException`` / urllib3 error is wrapped where it enters,
as ``KubeError`` (a ``PlatformError``) carrying the HTTP status.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Iterator, Protocol
from urllib.parse import quote

from harness.errors import BadInput, PlatformError

log = logging.getLogger(__name__)

#: The namespaced resources the platform reads, by the short name used here.
RESOURCES: dict[str, str] = {
    "pods": "/api/v1/namespaces/{ns}/pods",
    "services": "/api/v1/namespaces/{ns}/services",
    "events": "/api/v1/namespaces/{ns}/events",
    "endpointslices": "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
    "deployments": "/apis/apps/v1/namespaces/{ns}/deployments",
    "replicasets": "/apis/apps/v1/namespaces/{ns}/replicasets",
    "poddisruptionbudgets": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    "serviceaccounts": "/api/v1/namespaces/{ns}/serviceaccounts",
    "configmaps": "/api/v1/namespaces/{ns}/configmaps",
    "roles": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "rolebindings": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
    "ingresses": "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
    "jobs": "/apis/batch/v1/namespaces/{ns}/jobs",
}
NAMESPACES = "/api/v1/namespaces"


class KubeError(PlatformError):
    """The API server refused or could not be reached; ``status`` is the
    HTTP status (0: no response)."""

    def __init__(self, message: str, status: int = 0, reason: str = ""):
        super().__init__(message)
        self.status = status
        self.reason = reason


class Gone(KubeError):
    """410: the resourceVersion a watch resumes from is too old; re-list."""


class WatchStream(Protocol):
    """An open watch: iterate raw watch events; ``close`` from any thread
    ends the iteration."""

    def __iter__(self) -> Iterator[dict[str, Any]]: ...
    def close(self) -> None: ...


class KubeApi(Protocol):
    """What the platform needs from a cluster (raw JSON objects)."""

    def list(self, resource: str, namespace: str, *, label_selector: str | None = None,
             field_selector: str | None = None) -> tuple[list[dict[str, Any]], str]:
        """Items and the list's resourceVersion."""
    def watch(self, resource: str, namespace: str, *, resource_version: str,
              label_selector: str | None = None, timeout_seconds: int = 60) -> WatchStream: ...
    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]: ...
    def create(self, resource: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def patch(self, resource: str, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def delete(self, resource: str, namespace: str, name: str) -> None: ...
    def create_namespace(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def delete_namespace(self, name: str) -> None: ...
    def list_namespaces(self, label_selector: str) -> list[dict[str, Any]]: ...
    def pod_log(self, namespace: str, pod: str, container: str) -> WatchStream:
        """Follow a container's log; iterates ``{"line": str}`` dicts."""
    def proxy_get(self, namespace: str, pod: str, port: int, path: str, timeout: float = 10.0,
                  query: dict[str, str] | None = None) -> dict[str, Any]: ...
    def access_review(self, namespace: str, verb: str, resource: str, group: str,
                      subresource: str = "") -> tuple[bool, str]:
        """(allowed, reason) from a SelfSubjectAccessReview."""
    def version(self) -> dict[str, Any]: ...
    def get_node(self, name: str) -> dict[str, Any]: ...
    def list_nodes(self) -> list[dict[str, Any]]: ...
    def patch_node(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Strategic merge patch of a node (cordon: spec.unschedulable)."""
    def evict(self, namespace: str, pod: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST pods/<pod>/eviction (policy/v1); 429 while the PDB allows no disruption."""
    def node_images(self) -> list[str] | None:
        """Image names on the nodes, or None when nodes cannot be listed."""


# ---- the real client ---------------------------------------------------------

def load_api(*, kubeconfig: str | None, context: str | None) -> "RestKube":
    """Load a kubeconfig; a missing file or context is bad input (exit 2)."""
    from kubernetes import config as kconfig
    from kubernetes.config import ConfigException

    where = kubeconfig or "the default kubeconfig (KUBECONFIG or ~/.kube/config)"
    try:
        contexts, current = kconfig.list_kube_config_contexts(config_file=kubeconfig)
    except (ConfigException, OSError) as exc:
        raise BadInput(f"kubernetes: cannot read {where}: {exc} "
                       "(set kubernetes.kubeconfig in the scenario or KUBECONFIG)") from exc
    names = [c["name"] for c in contexts or []]
    if context and context not in names:
        raise BadInput(f"kubernetes.context: no context {context!r} in {where} "
                       f"(contexts there: {', '.join(names) or 'none'})")
    if not context and not current:
        raise BadInput(f"kubernetes: {where} has no current context; set kubernetes.context")
    try:
        api_client = kconfig.new_client_from_config(config_file=kubeconfig, context=context,
                                                    persist_config=False)
    except (ConfigException, OSError, ValueError) as exc:
        raise BadInput(f"kubernetes: cannot use context {context or current['name']!r} "
                       f"from {where}: {exc}") from exc
    return RestKube(api_client, context=context or current["name"])


def _error_message(status: int, reason: str, data: bytes) -> str:
    try:
        body = json.loads(data or b"{}")
        return body.get("message") or reason
    except (ValueError, AttributeError):
        return reason or data[:200].decode("utf-8", "replace")


class _LineStream:
    """Iterate JSON lines of a streaming response; ``close`` unblocks a read
    in another thread (urllib3's ``shutdown``)."""

    def __init__(self, response, *, raw_lines: bool = False):
        self._resp = response
        self._raw = raw_lines
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        import urllib3

        buf = b""
        try:
            for chunk in self._resp.stream(None, decode_content=True):  # one chunk per read, as sent
                buf += chunk
                if b"\n" in chunk:  # every complete line of the chunk in one split (a log stream is fast)
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield self._decode(line)
            if buf.strip():
                yield self._decode(buf)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if not self._closed.is_set():
                raise KubeError(f"stream interrupted: {exc}") from exc
        finally:
            self._resp.release_conn()

    def _decode(self, line: bytes) -> dict[str, Any]:
        if self._raw:
            return {"line": line.decode("utf-8", "replace")}
        return json.loads(line)

    def close(self) -> None:
        self._closed.set()
        shutdown = getattr(self._resp, "shutdown", None)
        try:
            if shutdown:
                shutdown()
            self._resp.close()
        except Exception:  # noqa: BLE001 - closing a dead stream must never fail the run
            pass


class RestKube:
    """``KubeApi`` over the kubernetes client's ApiClient (auth, TLS, pool)."""

    def __init__(self, api_client, *, context: str = ""):
        self._c = api_client
        self.context = context
        self.server = api_client.configuration.host

    # -- plumbing
    def _call(self, method: str, path: str, *, query: dict | None = None, body: Any = None,
              content_type: str | None = None, stream: bool = False, timeout: float | tuple = 30):
        import urllib3
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        params = [(k, v) for k, v in (query or {}).items() if v is not None]
        try:
            method, url, headers, body, _ = self._c.param_serialize(
                method, path, query_params=params, header_params=headers, body=body,
                auth_settings=["BearerToken"])
            resp = self._c.call_api(method, url, header_params=headers, body=body,
                                    _request_timeout=timeout)
        except ApiException as exc:
            raise KubeError(f"{method} {path}: {exc.reason}", exc.status or 0, str(exc.reason)) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeError(f"cannot reach the API server {self.server}: {exc}") from exc
        if not 200 <= resp.status <= 299:
            data = resp.read()
            msg = _error_message(resp.status, resp.reason, data)
            cls = Gone if resp.status == 410 else KubeError
            raise cls(f"{method} {path}: {resp.status} {msg}", resp.status, resp.reason)
        if stream:
            return resp.response
        try:
            return json.loads(resp.read() or b"{}")
        except (ValueError, urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeError(f"{method} {path}: unreadable answer: {exc}") from exc

    @staticmethod
    def _path(resource: str, namespace: str, name: str = "") -> str:
        base = RESOURCES[resource].format(ns=quote(namespace))
        return f"{base}/{quote(name)}" if name else base

    # -- KubeApi
    def list(self, resource, namespace, *, label_selector=None, field_selector=None):
        data = self._call("GET", self._path(resource, namespace),
                          query={"labelSelector": label_selector, "fieldSelector": field_selector})
        return data.get("items") or [], data.get("metadata", {}).get("resourceVersion", "")

    def watch(self, resource, namespace, *, resource_version, label_selector=None, timeout_seconds=60):
        resp = self._call("GET", self._path(resource, namespace), stream=True,
                          timeout=(10, timeout_seconds + 15),
                          query={"watch": "true", "resourceVersion": resource_version,
                                 "allowWatchBookmarks": "true", "labelSelector": label_selector,
                                 "timeoutSeconds": str(timeout_seconds)})
        return _LineStream(resp)

    def get(self, resource, namespace, name):
        return self._call("GET", self._path(resource, namespace, name))

    def create(self, resource, namespace, body):
        return self._call("POST", self._path(resource, namespace), body=body,
                          content_type="application/json")

    def patch(self, resource, namespace, name, body):
        return self._call("PATCH", self._path(resource, namespace, name), body=body,
                          content_type="application/strategic-merge-patch+json")

    def delete(self, resource, namespace, name):
        self._call("DELETE", self._path(resource, namespace, name),
                   query={"propagationPolicy": "Background"})

    def create_namespace(self, body):
        return self._call("POST", NAMESPACES, body=body, content_type="application/json")

    def delete_namespace(self, name):
        self._call("DELETE", f"{NAMESPACES}/{quote(name)}", query={"propagationPolicy": "Background"})

    def list_namespaces(self, label_selector):
        return self._call("GET", NAMESPACES, query={"labelSelector": label_selector}).get("items") or []

    def pod_log(self, namespace, pod, container):
        resp = self._call("GET", f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(pod)}/log",
                          query={"container": container, "follow": "true"}, stream=True,
                          timeout=(10, 3600))
        return _LineStream(resp, raw_lines=True)

    def pod_log_text(self, namespace, pod, container):
        """A container's whole log so far (not followed)."""
        resp = self._call("GET", f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(pod)}/log",
                          query={"container": container}, stream=True, timeout=(10, 60))
        try:
            return resp.read().decode("utf-8", "replace")
        finally:
            resp.release_conn()

    def proxy_get(self, namespace, pod, port, path, timeout=10.0, query=None):
        """GET ``path`` on ``pod:port`` through the API server's pod proxy
        (no Service, no network path from the harness to the pod needed)."""
        return self._call("GET", f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(pod)}:{int(port)}/proxy{path}",
                          query=query, timeout=(5, timeout))

    def access_review(self, namespace, verb, resource, group, subresource=""):
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"namespace": namespace, "verb": verb, "group": group,
                                                "resource": resource, "subresource": subresource}}}
        out = self._call("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=body,
                         content_type="application/json")
        st = out.get("status", {})
        return bool(st.get("allowed")), st.get("reason", "") or st.get("evaluationError", "")

    def version(self):
        return self._call("GET", "/version", timeout=(5, 10))

    def get_node(self, name):
        return self._call("GET", f"/api/v1/nodes/{quote(name)}")

    def list_nodes(self):
        return self._call("GET", "/api/v1/nodes").get("items") or []

    def patch_node(self, name, body):
        return self._call("PATCH", f"/api/v1/nodes/{quote(name)}", body=body,
                          content_type="application/strategic-merge-patch+json")

    def evict(self, namespace, pod, body):
        return self._call("POST", f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(pod)}/eviction",
                          body=body, content_type="application/json")

    def node_images(self):
        try:
            nodes = self._call("GET", "/api/v1/nodes").get("items") or []
        except KubeError as exc:
            if exc.status in (401, 403):
                return None
            raise
        names: list[str] = []
        for node in nodes:
            for img in node.get("status", {}).get("images") or []:
                names.extend(img.get("names") or [])
        return names
