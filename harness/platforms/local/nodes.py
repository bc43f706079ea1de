"""Nodes of the local platform and the scheduler's choice of a node for a
pod, so a drain has something to drain.

The nodes are names (``node-1`` .. ``node-N``, ``local.nodes``); every
replica still runs on this machine. A node is schedulable until cordoned
(``spec.unschedulable``). The choice follows kube-scheduler's plugins as far
as the scenario can express them, for the Deployment's own pods only and at
the node level (topologyKey ``kubernetes.io/hostname``):

- filter: cordoned nodes are out (NodeUnschedulable); a required
  podAntiAffinity term keeps out a node that already runs a pod of the app
  (InterPodAffinity); a ``DoNotSchedule`` topology spread constraint keeps
  out a node where placing the pod would make ``count(node) + 1 - min`` exceed
  maxSkew, ``min`` taken over the domains: every node under
  ``nodeTaintsPolicy: Ignore`` (the default, so a cordoned node still counts,
  with its terminating pods left out), only schedulable nodes under
  ``Honor`` (PodTopologySpread);
- score: fewest pods of the app on the node (``ScheduleAnyway`` constraints,
  preferred anti-affinity, and the default soft spreading that kube-scheduler
  applies to a Deployment without constraints); ties go to the node first by
  name (kube-scheduler picks one of the tied at random).

No fit: the pod stays Pending until a node fits (a cordoned node uncordoned,
a pod gone). Not modelled: resources, taints other than cordon, zones,
minDomains, matchLabelKeys.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from harness.model.scenario import Deployment


@dataclasses.dataclass
class Node:
    name: str
    unschedulable: bool = False  # cordoned


def node_names(count: int) -> list[str]:
    return [f"node-{i}" for i in range(1, count + 1)]


def choose_node(nodes: list[Node], pods_on: Mapping[str, int], deployment: Deployment) -> tuple[str | None, str]:
    """(node, "") or (None, why the pod stays Pending). ``pods_on`` counts the
    app's pods (not terminating) per node name."""
    count = {n.name: pods_on.get(n.name, 0) for n in nodes}
    fit = [n for n in nodes if not n.unschedulable]
    if not fit:
        return None, f"0/{len(nodes)} nodes are available: {len(nodes)} node(s) were unschedulable"
    why: list[str] = []
    anti = deployment.affinity.pod_anti_affinity if deployment.affinity else None
    if anti is not None and anti.required_during_scheduling_ignored_during_execution:
        kept = [n for n in fit if count[n.name] == 0]
        if len(kept) < len(fit):
            why.append(f"{len(fit) - len(kept)} node(s) didn't match pod anti-affinity rules")
        fit = kept
    for c in deployment.topology_spread_constraints:
        if c.when_unsatisfiable != "DoNotSchedule":
            continue
        domains = nodes if c.node_taints_policy == "Ignore" else [n for n in nodes if not n.unschedulable]
        low = min((count[n.name] for n in domains), default=0)
        kept = [n for n in fit if count[n.name] + 1 - low <= c.max_skew]
        if len(kept) < len(fit):
            why.append(f"{len(fit) - len(kept)} node(s) didn't match pod topology spread constraints")
        fit = kept
    if not fit:
        cordoned = sum(n.unschedulable for n in nodes)
        parts = ([f"{cordoned} node(s) were unschedulable"] if cordoned else []) + why
        return None, f"0/{len(nodes)} nodes are available: " + ", ".join(parts)
    best = min(fit, key=lambda n: (count[n.name], n.name))
    return best.name, ""


def busiest_node(pods_on: Mapping[str, int], nodes: list[Node]) -> str:
    """The node running the most pods of the app (first by name on a tie):
    what a drain without named nodes drains."""
    return min(nodes, key=lambda n: (-pods_on.get(n.name, 0), n.name)).name
