"""List + watch one resource kind for the whole run, robustly.

The loop (kopf's, client-go's reflector's): list, hand every object to the
tracker, then watch from the list's resourceVersion; when the server ends
the watch (its timeout) or the connection drops, resume from the last
resourceVersion seen; on 410 Gone (that version was compacted away) list
again and reconcile — an object that vanished in the gap is reported
deleted. Unknown watch event types are skipped with a log line. Per object
(uid) only a newer resourceVersion is applied, so duplicates and
out-of-order deliveries change nothing; a deleted uid never comes back.

Each raw list/watch delivery is stamped with the run clock on arrival and,
when ``record`` is given, appended to it as a JSON line — the raw stream of
a real run, which the unit tests replay.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable, Protocol, TextIO

from harness.platforms.kubernetes.client import Gone, KubeApi, KubeError, WatchStream
from harness.platforms.kubernetes.podtrack import Step

log = logging.getLogger(__name__)

WATCH_TYPES = ("ADDED", "MODIFIED", "DELETED")


class Tracker(Protocol):
    def update(self, obj: dict, *, listed: bool = False) -> list[Step]: ...
    def deleted(self, obj: dict, *, missed: bool = False) -> list[Step]: ...


def _rv(obj: dict) -> str:
    return obj.get("metadata", {}).get("resourceVersion", "")


def _newer(rv: str, than: str) -> bool:
    """resourceVersions are opaque, but etcd's are integers: compare those;
    anything else counts as newer when it differs."""
    if rv.isdigit() and than.isdigit():
        return int(rv) > int(than)
    return rv != than


class ResourceWatch:
    """Runs in a daemon thread (``start``); ``stop`` ends it promptly."""

    def __init__(self, api: KubeApi, resource: str, namespace: str, tracker: Tracker,
                 sink: Callable[[int, Step], None], now: Callable[[], int], *,
                 label_selector: str | None = None, timeout_seconds: int = 60,
                 record: TextIO | None = None, record_lock: threading.Lock | None = None,
                 retry_delay: float = 0.5, sleep: Callable[[float], Any] | None = None):
        self.api, self.resource, self.namespace = api, resource, namespace
        self.tracker, self.sink, self.now = tracker, sink, now
        self.label_selector, self.timeout_seconds = label_selector, timeout_seconds
        self._record, self._record_lock = record, record_lock or threading.Lock()
        self._retry_delay = retry_delay
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._stream: WatchStream | None = None
        self._thread: threading.Thread | None = None
        self._known: dict[str, tuple[str, dict]] = {}  # uid -> (resourceVersion, last object)
        self._gone: set[str] = set()
        self.resource_version = ""
        self.listed = threading.Event()  # the first list is done
        self.stats = {"lists": 0, "watches": 0, "gone": 0, "disconnects": 0, "skipped": 0, "unknown": 0}
        self.error: Exception | None = None

    # -- thread control
    def start(self) -> "ResourceWatch":
        self._thread = threading.Thread(target=self.run, name=f"watch-{self.resource}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # -- the loop
    def run(self, max_sessions: int | None = None) -> None:
        """List, then watch and resume until stopped (or ``max_sessions`` watch
        sessions, for tests)."""
        need_list = True
        sessions = 0
        while not self._stop.is_set() and (max_sessions is None or sessions < max_sessions):
            try:
                if need_list:
                    self._list()
                    need_list = False
                sessions += 1
                need_list = self._watch_once()
            except Gone:
                self.stats["gone"] += 1
                need_list = True
            except KubeError as exc:
                if self._stop.is_set():
                    break
                self.stats["disconnects"] += 1
                self.error = exc
                log.info("watch %s/%s interrupted (%s); resuming from %s", self.namespace, self.resource,
                         exc, self.resource_version or "a new list")
                if exc.status in (401, 403, 404):
                    need_list = True
                self._sleep(self._retry_delay)

    def _list(self) -> None:
        items, rv = self.api.list(self.resource, self.namespace, label_selector=self.label_selector)
        t_ns = self.now()
        self.stats["lists"] += 1
        self._write_record({"t_ns": t_ns, "resource": self.resource, "op": "list",
                            "resourceVersion": rv, "items": items})
        seen: set[str] = set()
        for obj in items:
            uid = obj.get("metadata", {}).get("uid", "")
            seen.add(uid)
            self._apply("ADDED", obj, t_ns, listed=True)
        for uid in [u for u in self._known if u not in seen]:
            _, last = self._known.pop(uid)
            self._gone.add(uid)
            self._emit(t_ns, self.tracker.deleted(last, missed=True))
        self.resource_version = rv
        self.listed.set()

    def _watch_once(self) -> bool:
        """One watch session; True when a re-list is needed."""
        self.stats["watches"] += 1
        stream = self.api.watch(self.resource, self.namespace, resource_version=self.resource_version,
                                label_selector=self.label_selector, timeout_seconds=self.timeout_seconds)
        self._stream = stream
        started, delivered = time.monotonic(), 0
        try:
            if self._stop.is_set():
                return False
            for event in stream:
                delivered += 1
                t_ns = self.now()
                self._write_record({"t_ns": t_ns, "resource": self.resource, "op": "watch", "event": event})
                etype, obj = event.get("type"), event.get("object") or {}
                if etype == "BOOKMARK":
                    self.resource_version = _rv(obj) or self.resource_version
                elif etype == "ERROR":
                    code = obj.get("code")
                    if code == 410:
                        self.stats["gone"] += 1
                        return True
                    raise KubeError(f"watch error: {obj.get('message', obj)}", int(code or 0))
                elif etype in WATCH_TYPES:
                    self._apply(etype, obj, t_ns)
                    self.resource_version = _rv(obj) or self.resource_version
                else:
                    self.stats["unknown"] += 1
                    log.warning("watch %s: skipping unknown event type %r", self.resource, etype)
                if self._stop.is_set():
                    break
        finally:
            self._stream = None
            stream.close()
        if delivered == 0 and time.monotonic() - started < 1.0:
            self._sleep(self._retry_delay)  # a server ending empty watches at once must not spin us
        return False

    def _apply(self, etype: str, obj: dict, t_ns: int, *, listed: bool = False) -> None:
        uid, rv = obj.get("metadata", {}).get("uid", ""), _rv(obj)
        known = self._known.get(uid)
        if uid in self._gone or (known is not None and not _newer(rv, known[0])):
            self.stats["skipped"] += 1
            return
        if etype == "DELETED":
            self._known.pop(uid, None)
            self._gone.add(uid)
            self._emit(t_ns, self.tracker.deleted(obj))
            return
        self._known[uid] = (rv, obj)
        self._emit(t_ns, self.tracker.update(obj, listed=listed))

    def _emit(self, t_ns: int, steps: list[Step]) -> None:
        for step in steps:
            self.sink(t_ns, step)

    def _write_record(self, rec: dict[str, Any]) -> None:
        if self._record is None:
            return
        line = json.dumps(rec, separators=(",", ":"))
        with self._record_lock:
            if not self._record.closed:
                self._record.write(line + "\n")

