"""The seam between the run, the traffic engine and a platform.

A platform is constructed with the scenario, the run dir, the run clock and
the event writer, and is used by harness.runner like this::

    async with platform:                 # __aexit__ always tears down
        await platform.deploy()          # all replicas ready, endpoints visible
        await wait_until_serving(...)    # the one serving check (harness.traffic.preflight)
        session = TrafficSession(..., resolver=platform.resolver())   # harness.traffic.session
        ... baseline ...
        await platform.disrupt()         # trigger the rollout, return when complete
        ... settle ...

``disrupt`` raises ``PlatformError`` when the rollout cannot complete (stuck,
progress deadline exceeded); the run is then inconclusive but its records
and report are still written.

The resolver is how a platform that routes connections itself (local) puts
each *new* connection on a pod without a proxy in the data path: the engine
calls ``pick()`` synchronously, on its event loop, each time it opens a
connection (engine worker processes ask it over a pipe: harness.traffic.routes),
and records ``Route.pod`` as the request's ``route_pod`` (ground truth).
``None`` means no endpoint is ready: the engine records the request as
refused, as kube-proxy's REJECT rule makes it on a cluster.
"""

from __future__ import annotations

from typing import Protocol

from harness.model.routing import Resolver, Route, StaticResolver  # noqa: F401 (the seam's types)


class Platform(Protocol):
    name: str

    async def deploy(self) -> None: ...
    def target_url(self) -> str: ...
    def resolver(self) -> Resolver | None: ...
    async def disrupt(self) -> None: ...
    async def teardown(self) -> None: ...
    def describe(self) -> dict: ...  # what the manifest records as platform_info
    def rollout_state(self) -> str: ...  # one line for the progress display
    @property
    def repeatable_disrupt(self) -> bool: ...  # disrupt() may run again on the same Deployment (run --repeat)
    async def __aenter__(self) -> "Platform": ...
    async def __aexit__(self, *exc) -> None: ...
