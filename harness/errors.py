"""The tool's own errors, as one tree; each maps to the exit code a CI job sees.

    HarnessError                 exit 1 (unexpected, but still ours)
    ├── BadInput                 exit 2: a file, field or argument is wrong
    │   └── ScenarioError        a scenario file failed validation
    ├── Inconclusive             exit 3: the run could not see (engine behind,
    │   │                        rollout stuck, target failing before disruption)
    │   └── PlatformError        the platform could not deploy/roll out/start the app
    └── (failures of the service under test are data, never exceptions)

Errors from outside (OS, httpx, Kubernetes) are wrapped where they enter,
with ``raise ... from exc``.
"""

from __future__ import annotations

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_BAD_INPUT = 2
EXIT_INCONCLUSIVE = 3


class HarnessError(Exception):
    exit_code = EXIT_FAIL


class BadInput(HarnessError):
    """Something the user gave us is wrong; the message says what and how to fix it."""

    exit_code = EXIT_BAD_INPUT


class ScenarioError(BadInput):
    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: invalid scenario\n{lines}")


class Inconclusive(HarnessError):
    """The run could not observe what it was asked to observe."""

    exit_code = EXIT_INCONCLUSIVE


class PlatformError(Inconclusive):
    """The platform failed to deploy, roll out, or start the app."""


class ObservationIncomplete(PlatformError):
    """The rollout completed, but a pod it deleted was not seen to end
    within its grace period plus a margin: the run did not observe the
    whole disruption, so it cannot pass. The message names the pod."""
