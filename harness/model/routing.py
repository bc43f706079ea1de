"""Where a new connection goes: the seam between the traffic engine and a
platform that routes connections itself (see harness.platforms.base).

The engine calls ``Resolver.pick()`` synchronously, on its event loop, for
every new connection, and records ``Route.pod`` as the request's
``route_pod``; ``None`` means no ready endpoint (recorded as refused).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable


class Route(NamedTuple):
    host: str
    port: int
    pod: str | None = None


@runtime_checkable
class Resolver(Protocol):
    def pick(self) -> Route | None: ...


class StaticResolver:
    """Every connection goes to one address (a cluster's NodePort, any URL)."""

    __slots__ = ("route",)

    def __init__(self, host: str, port: int):
        self.route = Route(host, port, None)

    def pick(self) -> Route | None:
        return self.route
