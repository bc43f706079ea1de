"""Follow each pod's log while it lives.

The app's shutdown lines (SIGTERM received, listener closed, drained,
exiting) are written in the last second of a pod's life; a log fetched at
the end of the run would find the pod gone. So each container's log is
followed from the moment it starts, in a daemon thread, into
``logs/<pod>.log``; each JSON line ``{"ts", "pod", "event", ...}`` becomes a
lifecycle event on the run clock (harness.platforms.applog, the parser
the local platform uses too). A stream that drops while the container still runs is
re-opened, skipping the lines already read (a container log only grows).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

from harness.platforms.applog import app_log_event
from harness.platforms.kubernetes.client import KubeApi, KubeError
from harness.platforms.kubernetes.podtrack import Step

log = logging.getLogger(__name__)

def parse_app_line(line: str, pod: str, from_wall_s: Callable[[float], int]) -> tuple[int, Step] | None:
    """(t_ns, step) for one JSON log line of the app (harness.platforms.applog); None for other lines."""
    ev = app_log_event(line, pod=pod, from_wall_s=from_wall_s)
    return None if ev is None else (ev.t_ns, Step(ev.pod, ev.kind, ev.detail))


class LineFollower:
    """Follows one container's log in a daemon thread, each line to
    ``on_line``; a dropped stream is re-opened (skipping the lines already
    read) while the container runs. ``ended`` is set when it gave up."""

    def __init__(self, api: KubeApi, namespace: str, pod: str, container: str, on_line: Callable[[str], None], *,
                 still_running: Callable[[], bool], retries: int = 20, retry_delay: float = 0.25,
                 thread_name: str = "log"):
        self.api, self.namespace, self.pod, self.container = api, namespace, pod, container
        self.on_line, self.still_running = on_line, still_running
        self.retries, self.retry_delay = retries, retry_delay
        self.lines = 0
        self.reopened = 0
        self.ended = threading.Event()
        self._stop = threading.Event()
        self._stream = None
        self._thread: threading.Thread | None = None
        self._thread_name = f"{thread_name}-{pod}"

    def start(self) -> "LineFollower":
        self._thread = threading.Thread(target=self.run, name=self._thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._stream is not None:
            self._stream.close()
        if self._thread is not None:
            self._thread.join(timeout)

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        attempts = 0
        try:
            while not self._stop.is_set() and attempts <= self.retries:
                attempts += 1
                try:
                    self._follow()
                except KubeError as exc:
                    # 400 "container is waiting to start" right after the start, or a dropped stream
                    log.debug("log %s/%s: %s", self.namespace, self.pod, exc)
                if self._stop.is_set() or not self.still_running():
                    break
                self.reopened += 1
                self._stop.wait(self.retry_delay)
        finally:
            self.ended.set()

    def _follow(self) -> None:
        stream = self.api.pod_log(self.namespace, self.pod, self.container)
        self._stream = stream
        skip = self.lines
        t0 = time.monotonic()
        try:
            for i, item in enumerate(stream):
                if i < skip:
                    continue
                self.lines += 1
                self.on_line(item["line"])
                if self._stop.is_set():
                    break
        finally:
            self._stream = None
            stream.close()
            log.debug("log %s/%s: stream ended after %.1f s", self.namespace, self.pod, time.monotonic() - t0)


class LogFollower(LineFollower):
    """Follows ``namespace/pod``'s container into ``logs/<pod>.log``, each app
    JSON line to ``sink`` as a lifecycle step; ``stop`` ends it."""

    def __init__(self, api: KubeApi, namespace: str, pod: str, container: str, logs_dir: Path,
                 sink: Callable[[int, Step], None], from_wall_s: Callable[[float], int], *,
                 still_running: Callable[[], bool], retries: int = 20, retry_delay: float = 0.25):
        super().__init__(api, namespace, pod, container, self._on_line, still_running=still_running,
                         retries=retries, retry_delay=retry_delay)
        self.path = Path(logs_dir) / f"{pod}.log"
        self.sink, self.from_wall_s = sink, from_wall_s
        self._out = None

    def run(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8", buffering=1) as out:
            self._out = out
            super().run()

    def _on_line(self, line: str) -> None:
        self._out.write(line + "\n")
        parsed = parse_app_line(line, self.pod, self.from_wall_s)
        if parsed is not None:
            self.sink(*parsed)
