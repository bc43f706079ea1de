"""Routes for engine workers in other processes.

A platform that routes connections itself (the local platform's kube-proxy
view) has its resolver on the run's event loop, in the harness process. An
engine worker in another process asks that resolver over a pipe for each new
connection: the parent answers with ``resolver.pick()`` at the moment the
question arrives, so a worker's connection sees the endpoints visible then,
exactly as an in-process engine's would (plus a pipe round trip, tens of
microseconds). Questions and answers are in order, one answer per question.
"""

from __future__ import annotations

import asyncio
import collections
from multiprocessing.connection import Connection

from harness.model.routing import Resolver, Route

_ASK = b"?"


class RouteClient:
    """The worker's side: ``await pick()`` for each new connection."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._waiting: collections.deque[asyncio.Future] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _attach(self) -> asyncio.AbstractEventLoop:
        loop = self._loop = asyncio.get_running_loop()
        loop.add_reader(self.conn.fileno(), self._on_answer)
        return loop

    def pick(self) -> asyncio.Future:
        loop = self._loop or self._attach()
        fut = loop.create_future()
        self._waiting.append(fut)
        self.conn.send_bytes(_ASK)
        return fut

    def _on_answer(self) -> None:
        try:
            while self.conn.poll():
                route = self.conn.recv()
                fut = self._waiting.popleft()
                if not fut.done():  # cancelled by a connect timeout: the answer is dropped
                    fut.set_result(route)
        except (EOFError, OSError):  # the parent is gone: no more routes
            self.close()
            while self._waiting:
                fut = self._waiting.popleft()
                if not fut.done():
                    fut.set_result(None)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.conn.fileno())
            self._loop = None


def serve_routes(loop: asyncio.AbstractEventLoop, conn: Connection, resolver: Resolver) -> None:
    """The parent's side: answer ``conn``'s questions with ``resolver.pick()``
    on ``loop`` until the worker closes its end."""

    def answer() -> None:
        try:
            while conn.poll():
                conn.recv_bytes()
                route: Route | None = resolver.pick()
                conn.send(route)
        except (EOFError, OSError):
            loop.remove_reader(conn.fileno())

    loop.add_reader(conn.fileno(), answer)
