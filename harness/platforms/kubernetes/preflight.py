"""Checks before any load: is this cluster usable for this run?

Each check fails with a message that says what to fix, as the error the
CLI turns into an exit code: a missing context, a missing permission or an
image not on the nodes is bad input (2, the user's configuration); an API
server that does not answer or a target URL that does not respond is an
unusable cluster (3).

``PERMISSIONS`` is the one list of what the platform does to a cluster;
deploy/rbac/role.yaml grants exactly these verbs, and a test keeps them in
step.
"""

from __future__ import annotations

from typing import NamedTuple

from harness.errors import BadInput, PlatformError
from harness.platforms.kubernetes.client import KubeApi, KubeError


class Permission(NamedTuple):
    group: str
    resource: str
    verbs: tuple[str, ...]
    subresource: str = ""
    modes: tuple[str, ...] = ("managed", "target")
    #: needed only when the disruption is a node drain
    drain_only: bool = False
    #: needed only with traffic.generators (the generator Job, its pods' control port)
    generators_only: bool = False


PERMISSIONS: tuple[Permission, ...] = (
    Permission("", "pods", ("get", "list", "watch")),
    Permission("", "pods", ("get",), subresource="log"),
    Permission("", "events", ("list", "watch")),
    Permission("", "services", ("get", "list")),
    Permission("", "services", ("create",), modes=("managed",)),
    Permission("discovery.k8s.io", "endpointslices", ("list", "watch")),
    Permission("apps", "deployments", ("get", "patch")),
    Permission("apps", "deployments", ("create", "delete", "list"), modes=("managed",)),
    Permission("apps", "replicasets", ("list",)),
    Permission("", "services", ("delete",), modes=("managed",)),
    Permission("policy", "poddisruptionbudgets", ("create", "delete", "list"), modes=("managed",)),
    # a node drain: evict the run's pods (the API server applies the PDB), read the PDB's status
    Permission("", "pods", ("create",), subresource="eviction", drain_only=True),
    Permission("policy", "poddisruptionbudgets", ("get",), drain_only=True),
    # traffic.generators: one Indexed Job; clock exchange and start signal through the pod proxy
    Permission("batch", "jobs", ("create", "delete", "list"), modes=("managed",), generators_only=True),
    Permission("", "pods", ("get",), subresource="proxy", modes=("managed",), generators_only=True),
    Permission("", "pods", ("delete",), modes=("managed",), generators_only=True),
)

#: cluster-scoped, only for a node drain: read a node before cordoning it (one cordoned
#: already is left as found), cordon and uncordon it (spec.unschedulable and the
#: cordoned-by mark), list nodes to find what a cut-short drain left marked
DRAIN_NODE_VERBS = ("get", "list", "patch")

#: cluster-scoped, only when the harness creates a namespace per run
NAMESPACE_VERBS = ("create", "delete", "list")


def check_api(api: KubeApi, *, context: str) -> dict:
    try:
        return api.version()
    except KubeError as exc:
        raise PlatformError(f"kubernetes: context {context!r}: the API server does not answer: {exc} "
                            "(is the cluster running? `make kind-up` for kind)") from exc


def missing_permissions(api: KubeApi, namespace: str, mode: str, drain: bool = False,
                        generators: bool = False) -> list[str]:
    missing = []
    for p in PERMISSIONS:
        if mode not in p.modes or (p.drain_only and not drain) or (p.generators_only and not generators):
            continue
        for verb in p.verbs:
            allowed, reason = api.access_review(namespace, verb, p.resource, p.group, p.subresource)
            if not allowed:
                res = p.resource + (f"/{p.subresource}" if p.subresource else "")
                missing.append(f"{verb} {res}" + (f" ({p.group})" if p.group else "")
                               + (f": {reason}" if reason else ""))
    return missing


def check_access(api: KubeApi, namespace: str, *, mode: str, per_run_namespace: bool,
                 drain: bool = False, cordon: bool = True, generators: bool = False) -> None:
    """``drain``: the disruption evicts pods (drain or evict); ``cordon``:
    and cordons a node (drain only)."""
    try:
        missing = missing_permissions(api, namespace, mode, drain, generators)
        if drain and cordon:
            for verb in DRAIN_NODE_VERBS:
                allowed, _ = api.access_review("", verb, "nodes", "")
                if not allowed:
                    missing.append(f"{verb} nodes (cluster-wide, to cordon and uncordon for the drain: "
                                   "the ClusterRole rollout-harness-drain in deploy/rbac/role.yaml)")
        if per_run_namespace:
            for verb in NAMESPACE_VERBS:
                allowed, _ = api.access_review("", verb, "namespaces", "")
                if not allowed:
                    missing.append(f"{verb} namespaces (cluster-wide; or set kubernetes.namespace to an "
                                   "existing namespace to run with only the namespaced Role)")
    except KubeError as exc:
        raise PlatformError(f"kubernetes: cannot check permissions (SelfSubjectAccessReview): {exc}") from exc
    if missing:
        raise BadInput(f"kubernetes: not allowed in namespace {namespace!r}: " + "; ".join(missing)
                       + " — bind deploy/rbac/role.yaml to your user (see docs/kubernetes.md)")


def check_image(api: KubeApi, image: str, pull_policy: str) -> str:
    """Only where it can be known: with pull policy Never the image must
    already be on a node; nodes list at most 50 images each, so a miss on a
    node with a full list proves nothing."""
    if pull_policy != "Never":
        return "image pulled by the nodes as needed"
    try:
        names = api.node_images()
    except KubeError:
        names = None
    if names is None:
        return "image presence not checked (cannot list nodes)"
    wanted = {image, f"docker.io/{image}", f"docker.io/library/{image}"}
    if wanted & set(names):
        return "image present on a node"
    if len(names) >= 50:
        return "image not in the nodes' (truncated) image lists; not conclusive"
    raise BadInput(f"kubernetes: image {image!r} is not on any node and imagePullPolicy is Never: "
                   "load it first (`make kind-load` for kind) or set kubernetes.imagePullPolicy")
