"""Records from a generator, on the run clock, into the run dir: the
harness's half of harness.traffic.recordwire.

Each generator's lines are fed in the order its stream delivered them;
every batch is converted to the run clock as it arrives (the generator's
scheduled/sent/ended times minus its clock offset; -1, "never sent", stays
-1) and appended to ``requests/generator-NNN.arrow`` — the same Arrow
stream the in-process engine writes, so analysis and report read it
unchanged. Status lines (ready, started, heartbeat, done, sigterm) are kept
as the generator's last word and its liveness.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from harness.model.requests import SCHEMA
from harness.traffic.recordwire import Reassembler

TIME_COLUMNS = ("scheduled_ns", "sent_ns", "ended_ns")


def to_run_clock(batch: pa.RecordBatch, offset_ns: int) -> pa.RecordBatch:
    """``batch`` with its times moved from the generator's clock to the run
    clock (t_run = t_gen - offset); -1 (never sent) stays -1."""
    cols = []
    for name in batch.schema.names:
        col = batch.column(name)
        if name in TIME_COLUMNS:
            shifted = pc.subtract(col, pa.scalar(offset_ns, pa.int64()))
            col = pc.if_else(pc.less(col, 0), col, shifted)
        cols.append(col)
    return pa.RecordBatch.from_arrays(cols, schema=batch.schema)


class GeneratorRecords:
    """One generator's stream: lines in, converted records on disk, status kept."""

    def __init__(self, index: int, path: Path, *, now: Callable[[], int] = time.monotonic_ns):
        self.index = index
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._sink = pa.OSFile(str(self.path), "wb")
        self._writer = ipc.new_stream(self._sink, SCHEMA)
        self._re = Reassembler()
        self._lock = threading.Lock()
        self._now = now
        self.offset_ns: int | None = None
        self.pending: list[pa.RecordBatch] = []  # batches before the offset was known (never, by design)
        self.rows = 0
        self.batches = 0
        self.lines = 0
        self.bytes = 0
        self.last_heard: int | None = None  # run clock (now()) of the last line
        self.status: dict[str, dict[str, Any]] = {}  # event -> last status line of that kind
        self.heartbeat: dict[str, Any] = {}
        self.closed = False

    def set_offset(self, offset_ns: int) -> None:
        with self._lock:
            self.offset_ns = offset_ns
            for b in self.pending:
                self._write(b)
            self.pending.clear()

    def feed(self, line: str) -> None:
        with self._lock:
            self.lines += 1
            self.bytes += len(line) + 1
            self.last_heard = self._now()
            for kind, item in self._re.feed(line):
                if kind == "status":
                    ev = str(item.get("event", ""))
                    self.status[ev] = item
                    if ev == "heartbeat":
                        self.heartbeat = item
                elif self.offset_ns is None:
                    self.pending.append(item)
                else:
                    self._write(item)

    def _write(self, batch: pa.RecordBatch) -> None:
        if self.closed:
            return
        if batch.schema != SCHEMA:
            batch = pa.RecordBatch.from_arrays([batch.column(n) for n in SCHEMA.names], schema=SCHEMA)
        self._writer.write_batch(to_run_clock(batch, self.offset_ns or 0))
        self._sink.flush()
        self.rows += batch.num_rows
        self.batches += 1

    @property
    def done(self) -> dict[str, Any] | None:
        return self.status.get("done")

    @property
    def torn(self) -> int:
        return self._re.torn + self._re.bad

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._writer.close()
            self._sink.close()
