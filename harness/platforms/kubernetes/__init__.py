"""The kubernetes platform: the same scenarios on kind or any cluster, with
the pod lifecycle from the API (see docs/kubernetes.md).

    platform.py       the Platform seam, watches, log followers, teardown
    deploy.py         deploy (managed / target), wait until ready, follow a rollout
    client.py         KubeApi: the one narrow seam around the kubernetes client
    watch.py          list + watch with resume, 410 re-list, dedupe
    podtrack.py       Pod objects        -> pod lifecycle steps
    endpointtrack.py  EndpointSlices     -> the traffic path's view per pod
    eventtrack.py     Events             -> kubelet steps (Killing, Unhealthy)
    podlogs.py        each pod's log, followed while it lives
    manifests.py      scenario -> Namespace, Deployment, Service, PDB
    rollout.py        a Deployment's rollout state, as kubectl judges it
    preflight.py      context, permissions, image, before any load
"""

from harness.platforms.kubernetes.platform import KubernetesPlatform

__all__ = ["KubernetesPlatform"]
