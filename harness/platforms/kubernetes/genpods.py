"""The generator Job on a cluster: create it, find its pods, talk to each
through the API server's pod proxy, follow each one's log stream, delete
it all. The kubernetes half of ``traffic.generators``; the runner joins it
with the traffic half (harness.fleet).

Why the API server for everything: the harness may run outside the
cluster's network (a laptop, a CI runner); the pod proxy and the log
stream reach any pod the kubeconfig can reach, with no Service, port
mapping or route to the pods.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, Callable

from harness.model.generators import CONTROL_PORT
from harness.platforms.kubernetes.client import KubeApi, KubeError
from harness.platforms.kubernetes.podlogs import LineFollower
from harness.platforms.kubernetes.generators import CONTAINER, GENERATOR_LABEL, JOB_NAME

log = logging.getLogger(__name__)


class GeneratorPod:
    def __init__(self, obj: dict[str, Any]):
        meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status", {})
        ann = meta.get("annotations") or {}
        labels = meta.get("labels") or {}
        key = "batch.kubernetes.io/job-completion-index"
        idx = ann.get(key, labels.get(key))
        self.name = meta.get("name", "")
        self.index = int(idx) if idx is not None else -1
        self.node = spec.get("nodeName", "")
        self.phase = status.get("phase", "")
        self.ip = status.get("podIP", "")
        self.deleting = bool(meta.get("deletionTimestamp"))
        waiting = [c.get("state", {}).get("waiting") or {} for c in status.get("containerStatuses") or []]
        self.waiting_reason = next((w.get("reason", "") for w in waiting if w), "")
        self.running = self.phase == "Running" and not self.deleting


class GeneratorJob:
    """One run's generator Job in ``namespace``."""

    def __init__(self, api: KubeApi, namespace: str, run_label: str):
        self.api, self.namespace, self.run_label = api, namespace, run_label
        # one Job per traffic session (run --repeat makes several in one namespace)
        self.name = f"{JOB_NAME}-{secrets.token_hex(3)}"
        self.selector = f"{GENERATOR_LABEL}={run_label},batch.kubernetes.io/job-name={self.name}"
        self.created = False

    def create(self, job: dict[str, Any]) -> None:
        self.api.create("jobs", self.namespace, job)
        self.created = True

    def pods(self) -> list[GeneratorPod]:
        items, _ = self.api.list("pods", self.namespace, label_selector=self.selector)
        return sorted((GeneratorPod(p) for p in items), key=lambda p: (p.index, p.name))

    def ask(self, pod: str, path: str, *, query: dict[str, str] | None = None, timeout: float = 10.0) -> dict:
        return self.api.proxy_get(self.namespace, pod, CONTROL_PORT, path, timeout=timeout, query=query)

    def exchange(self, pod: str, now: Callable[[], int]) -> tuple[int, int, int]:
        """One clock exchange: (t_send, t_gen, t_recv), run clock around the pod's reading."""
        t_send = now()
        answer = self.ask(pod, "/clock", timeout=5.0)
        t_recv = now()
        return t_send, int(answer["t"]), t_recv

    def follow(self, pod: str, on_line: Callable[[str], None], *, still_running: Callable[[], bool]) -> "LineFollower":
        return LineFollower(self.api, self.namespace, pod, CONTAINER, on_line, still_running=still_running).start()

    def delete(self) -> None:
        """The Job and its pods, now (the namespace may outlive the run)."""
        if not self.created:
            return
        try:
            self.api.delete("jobs", self.namespace, self.name)
        except KubeError as exc:
            if exc.status != 404:
                log.warning("kubernetes: could not delete the generator Job: %s", exc)
        try:
            for p in self.pods():
                try:
                    self.api.delete("pods", self.namespace, p.name)
                except KubeError as exc:
                    if exc.status != 404:
                        raise
        except KubeError as exc:
            log.warning("kubernetes: could not delete the generator pods: %s "
                        "(`rollout-harness cleanup` removes leftovers)", exc)
        self.created = False
