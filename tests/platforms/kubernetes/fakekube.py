"""A scripted stand-in for the KubeApi seam, fed from recorded streams.

Recorded streams are the platform's own raw record (kube-watch.jsonl in a
run dir: one JSON line per list answer or watch event, stamped with the run
clock on arrival). ``Recording`` splits one by resource; ``FakeKube``
answers ``list`` and ``watch`` from scripted sessions, where a session may
end by raising (a dropped connection) and a watch may deliver an ERROR
object (410 Gone). ``now()`` returns the recorded arrival time of the
event just delivered, so replays are deterministic.
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from harness.platforms.kubernetes.client import KubeError

FIXTURES = Path(__file__).parent / "fixtures"


class Recording:
    def __init__(self, path: Path):
        self.records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def lists(self, resource: str) -> list[dict]:
        return [r for r in self.records if r["resource"] == resource and r["op"] == "list"]

    def events(self, resource: str) -> list[tuple[int, dict]]:
        return [(r["t_ns"], r["event"]) for r in self.records if r["resource"] == resource and r["op"] == "watch"]


def load(name: str) -> Recording:
    return Recording(FIXTURES / name)


class FakeStream:
    def __init__(self, kube: "FakeKube", items: list):
        self.kube, self.items, self.closed = kube, items, False

    def __iter__(self):
        for item in self.items:
            if self.closed:
                return
            if isinstance(item, Exception):
                raise item
            t_ns, event = item
            self.kube.t_ns = t_ns
            yield event

    def close(self) -> None:
        self.closed = True


class FakeKube:
    """Only list/watch are scripted; the rest record calls for assertions."""

    def __init__(self):
        self.t_ns = 0
        self._lists: dict[str, deque] = defaultdict(deque)
        self._sessions: dict[str, deque] = defaultdict(deque)
        self.watch_calls: list[tuple[str, str]] = []
        self.list_calls: list[str] = []
        self.calls: list[tuple] = []
        self.objects: dict[tuple[str, str], dict] = {}
        #: pod -> HTTP codes the Eviction API answers in turn (the last repeats)
        self.eviction_answers: dict[str, list[int]] = {}
        #: node name -> Node object; patch_node merges into it (a missing node is created schedulable)
        self.nodes: dict[str, dict] = {}
        #: patch_node answers these HTTP codes in turn before it succeeds
        self.patch_node_errors: list[int] = []

    # -- scripting
    def script_list(self, resource: str, items: list[dict], rv: str, t_ns: int = 0) -> "FakeKube":
        self._lists[resource].append((items, rv, t_ns))
        return self

    def script_watch(self, resource: str, *items) -> "FakeKube":
        """One watch session: (t_ns, event) pairs, optionally ending in an exception."""
        self._sessions[resource].append(list(items))
        return self

    # -- KubeApi
    def list(self, resource, namespace, *, label_selector=None, field_selector=None):
        self.list_calls.append(resource)
        if not self._lists[resource]:
            return [], "1"
        items, rv, t_ns = self._lists[resource].popleft()
        self.t_ns = t_ns
        return items, rv

    def watch(self, resource, namespace, *, resource_version, label_selector=None, timeout_seconds=60):
        self.watch_calls.append((resource, resource_version))
        session = self._sessions[resource].popleft() if self._sessions[resource] else []
        return FakeStream(self, session)

    def get(self, resource, namespace, name):
        self.calls.append(("get", resource, name))
        try:
            return self.objects[(resource, name)]
        except KeyError:
            raise KubeError(f"{resource}/{name} not found", 404) from None

    def create(self, resource, namespace, body):
        self.calls.append(("create", resource, body["metadata"]["name"]))
        self.objects[(resource, body["metadata"]["name"])] = body
        return body

    def patch(self, resource, namespace, name, body):
        self.calls.append(("patch", resource, name, body))
        return self.objects.get((resource, name), {})

    def delete(self, resource, namespace, name):
        self.calls.append(("delete", resource, name))

    def create_namespace(self, body):
        self.calls.append(("create_namespace", body["metadata"]["name"]))
        return body

    def delete_namespace(self, name):
        self.calls.append(("delete_namespace", name))

    def list_namespaces(self, label_selector):
        self.calls.append(("list_namespaces", label_selector))
        return [o for (r, _), o in self.objects.items() if r == "namespaces"]

    def pod_log(self, namespace, pod, container):
        return FakeStream(self, [])

    def access_review(self, namespace, verb, resource, group, subresource=""):
        self.calls.append(("review", verb, resource, subresource))
        return True, ""

    def version(self) -> dict[str, Any]:
        return {"gitVersion": "v1.34.4"}

    def _node(self, name) -> dict:
        return self.nodes.setdefault(name, {"metadata": {"name": name, "resourceVersion": "1"}, "spec": {}})

    def get_node(self, name):
        return copy.deepcopy(self._node(name))

    def list_nodes(self):
        return [copy.deepcopy(n) for n in self.nodes.values()]

    def patch_node(self, name, body):
        """A strategic merge patch of spec.unschedulable and annotations (None
        deletes), with metadata.resourceVersion as a precondition (409)."""
        self.calls.append(("patch_node", name, body))
        if self.patch_node_errors:
            raise KubeError(f"patch node {name}: scripted error", status=self.patch_node_errors.pop(0))
        node = self._node(name)
        meta = body.get("metadata") or {}
        if meta.get("resourceVersion") not in (None, node["metadata"]["resourceVersion"]):
            raise KubeError(f"node {name}: the object has been modified", status=409)
        for key, value in (meta.get("annotations") or {}).items():
            ann = node["metadata"].setdefault("annotations", {})
            ann.pop(key, None) if value is None else ann.__setitem__(key, value)
        if "unschedulable" in (body.get("spec") or {}):
            value = body["spec"]["unschedulable"]
            node["spec"].pop("unschedulable", None) if value is None else node["spec"].__setitem__("unschedulable",
                                                                                                    value)
        node["metadata"]["resourceVersion"] = str(int(node["metadata"]["resourceVersion"]) + 1)
        return copy.deepcopy(node)

    def evict(self, namespace, pod, body):
        self.calls.append(("evict", pod))
        answer = self.eviction_answers.get(pod, [201])
        code = answer.pop(0) if len(answer) > 1 else answer[0]
        if code != 201:
            raise KubeError(f"POST pods/{pod}/eviction: {code}", code)
        self.objects.pop(("pods", pod), None)
        return {}

    def node_images(self):
        return None


class Sink:
    """Collects (t_ns, pod, kind, detail) as the watch emits them."""

    def __init__(self):
        self.steps: list[tuple[int, str, str, dict]] = []

    def __call__(self, t_ns, step) -> None:
        self.steps.append((t_ns if step.at_ns is None else step.at_ns, step.pod, str(step.kind), step.detail))

    def kinds(self, pod: str | None = None) -> list[str]:
        return [k for _, p, k, _ in self.steps if pod is None or p == pod]
