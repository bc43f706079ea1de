"""Pods of the local platform: the template a ReplicaSet stamps out and the
state of one pod as the controller and the endpoints see it."""

from __future__ import annotations

import dataclasses
import hashlib
import random
import sys
from pathlib import Path

from harness.model.scenario import Scenario

#: Kubernetes' rand.SafeEncodeString alphabet (no vowels, no look-alikes)
ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


@dataclasses.dataclass(frozen=True)
class Template:
    """What makes a ReplicaSet: a change here means a new one."""

    image: str
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    restarted_at: str = ""  # `kubectl rollout restart` sets an annotation
    revision: int = 1

    def hash(self) -> str:
        """pod-template-hash: 32 bits of the template, encoded as Kubernetes
        encodes its FNV hash (the decimal digits mapped to ALPHANUMS)."""
        h = hashlib.sha256(repr((self.image, self.command, self.env, self.restarted_at)).encode()).digest()
        return "".join(ALPHANUMS[int(d)] for d in str(int.from_bytes(h[:4], "big")))

    @classmethod
    def initial(cls, scenario: Scenario) -> "Template":
        app = scenario.app
        return cls(image=app.image, command=tuple(app.command), env=tuple(sorted(app.env.items())))

    def changed(self, scenario: Scenario, restarted_at: str) -> "Template":
        """The template after the scenario's disruption."""
        d = scenario.disruption
        if d.type == "restart":
            return dataclasses.replace(self, restarted_at=restarted_at, revision=self.revision + 1)
        env = dict(self.env) | dict(d.change.env)
        new = dataclasses.replace(self, image=d.change.image or self.image, env=tuple(sorted(env.items())),
                                  revision=self.revision + 1)
        if new.hash() == self.hash():
            # the change is already rolled out (a repeated rollout): roll it out again
            # as `kubectl rollout restart` would, with a new restartedAt annotation
            new = dataclasses.replace(new, restarted_at=restarted_at)
        return new


def pod_name(deployment: str, template_hash: str, rng: random.Random) -> str:
    return f"{deployment}-{template_hash}-" + "".join(rng.choice(ALPHANUMS) for _ in range(5))


def repo_root() -> Path:
    """Where relative app commands run: this checkout when the harness runs
    from one (the sample app lives there), else the current directory."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "sample-app").is_dir() else Path.cwd()


def substitute(arg: str, *, port: int, pod: str) -> str:
    return arg.replace("{python}", sys.executable).replace("{port}", str(port)).replace("{pod}", pod)


@dataclasses.dataclass(eq=False)
class Pod:
    name: str
    template: Template
    template_hash: str
    port: int
    created_ns: int
    started: bool = False  # startup probe passed (or none)
    ready: bool = False
    ready_since_ns: int = 0
    ever_ready: bool = False
    deleting: bool = False
    deletion_ns: int = 0
    gone: bool = False  # container stopped and pod removed
    restarts: int = 0
    failure: str | None = None  # why the pod can never run (exited before ever being ready)
    last_probe_failure: str = ""
    node: str | None = None  # None: Pending, no node fits (harness.platforms.local.nodes)
    pending_reason: str = ""

    def available(self, now_ns: int, min_ready_ns: int) -> bool:
        return self.ready and not self.deleting and now_ns - self.ready_since_ns >= min_ready_ns

    def deletion_rank(self) -> tuple:
        """Which pod a ReplicaSet deletes first when scaling down (as
        controller.ActivePods sorts): not ready before ready, ready for a
        shorter time first, more restarts first, newer first."""
        return (self.ready, -self.ready_since_ns if self.ready else 0, -self.restarts, -self.created_ns)
