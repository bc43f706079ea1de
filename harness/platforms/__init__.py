"""Platforms own deploy → (baseline) → disrupt → (settle) → teardown and emit
lifecycle events; the traffic engine only needs a target URL or a resolver."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import BadInput

if TYPE_CHECKING:
    from harness.model.clock import RunClock
    from harness.model.events import EventWriter
    from harness.model.scenario import Scenario
    from harness.platforms.base import Platform

PLATFORMS = ("local", "kubernetes")


def make_platform(name: str, scenario: "Scenario", run_dir: str | Path, clock: "RunClock",
                  events: "EventWriter") -> "Platform":
    """The platform called ``name``, ready for ``async with``."""
    if name == "local":
        from harness.platforms.local import LocalPlatform

        return LocalPlatform(scenario, run_dir, clock, events)
    if name == "kubernetes":
        from harness.platforms.kubernetes import KubernetesPlatform

        return KubernetesPlatform(scenario, run_dir, clock, events)
    raise BadInput(f"unknown platform {name!r}: choose one of {', '.join(PLATFORMS)}")
