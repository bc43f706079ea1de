"""Find and delete what killed runs left on a cluster, by label only; and
give back the nodes a killed drain left cordoned, found by their mark
(harness.platforms.kubernetes.drain.CORDONED_BY)."""

from __future__ import annotations

from typing import NamedTuple

from harness.platforms.kubernetes.client import KubeApi, KubeError
from harness.platforms.kubernetes.manifests import MANAGED_BY, MANAGER, RUN_LABEL

OBJECT_KINDS = ("deployments", "services", "poddisruptionbudgets",
                # the ingress proxy's (traffic.via: ingress; harness.platforms.kubernetes.ingress)
                "ingresses", "rolebindings", "roles", "serviceaccounts", "configmaps",
                # the generator pods' Indexed Job (traffic.generators); deleting it deletes its pods
                "jobs")


class Leftover(NamedTuple):
    resource: str  # "namespaces", "nodes" (cordoned by a run: uncordoned) or a namespaced resource
    namespace: str
    name: str
    run: str

    def __str__(self) -> str:
        where = f"{self.resource}/{self.name}" if self.resource in ("namespaces", "nodes") \
            else f"{self.resource}/{self.name} in {self.namespace}"
        return where + (f" (run {self.run})" if self.run else "")


def _selector(run_id: str | None) -> str:
    sel = f"{MANAGED_BY}={MANAGER}"
    return sel + (f",{RUN_LABEL}={run_id}" if run_id else "")


def find_leftovers(api: KubeApi, *, namespace: str | None = None, run_id: str | None = None) -> list[Leftover]:
    sel = _selector(run_id)
    if namespace is None:
        return [Leftover("namespaces", "", ns["metadata"]["name"],
                         ns["metadata"].get("labels", {}).get(RUN_LABEL, ""))
                for ns in api.list_namespaces(sel)
                if not ns.get("metadata", {}).get("deletionTimestamp")]
    out = []
    for resource in OBJECT_KINDS:
        try:
            items, _ = api.list(resource, namespace, label_selector=sel)
        except KubeError as exc:
            if resource == "jobs" and exc.status == 403:  # without the generators' verbs no run made one
                continue
            raise
        out += [Leftover(resource, namespace, o["metadata"]["name"],
                         o["metadata"].get("labels", {}).get(RUN_LABEL, "")) for o in items]
    return out


def find_cordoned(api: KubeApi, *, run_id: str | None = None) -> list[Leftover]:
    """Nodes a run cordoned and never uncordoned (killed mid-drain)."""
    from harness.platforms.kubernetes.drain import cordoned_by

    out = []
    for node in api.list_nodes():
        by = cordoned_by(node)
        if by is not None and (run_id is None or by == run_id):
            out.append(Leftover("nodes", "", node["metadata"]["name"], by))
    return out


def delete_leftovers(api: KubeApi, leftovers: list[Leftover]) -> list[tuple[Leftover, str]]:
    failed = []
    for item in leftovers:
        try:
            if item.resource == "nodes":
                from harness.platforms.kubernetes.drain import UNCORDON_PATCH

                api.patch_node(item.name, UNCORDON_PATCH)
            elif item.resource == "namespaces":
                api.delete_namespace(item.name)
            else:
                api.delete(item.resource, item.namespace, item.name)
        except KubeError as exc:
            if exc.status != 404:
                failed.append((item, str(exc)))
    return failed
