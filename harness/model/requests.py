"""Request records: one per request (including those never sent on time),
streamed to disk as Arrow IPC record batches, one file per engine worker.

A crash or Ctrl-C loses at most the batch not yet flushed (the engine flushes
every half second); a truncated last batch is skipped by the reader.

Columns (the contract; see docs/design.md):

    seq           int64   global request index; the schedule is seq / rate
    scheduled_ns  int64   when the open-loop schedule said to send it (run clock)
    sent_ns       int64   when it was written to the socket; -1 if never sent
    ended_ns      int64   when the outcome was known
    outcome       dict    harness.model.outcome.Outcome value
    status        int16   HTTP status; 0 if no response
    errno         int16   OS errno of the failure; 0 if none
    error         string  normalised error text; null if none
    conn_id       int64   connection id, unique across workers; -1 if none
    conn_reused   bool    the connection had served a request before
    pod           string  pod that answered (response header); null if none
    route_pod     string  pod the connection was routed to, when the platform
                          knows it (local platform: ground truth); else null
    worker        int16   engine worker index
"""

from __future__ import annotations

import array
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from harness.model.outcome import OUTCOMES

OUTCOME_DICTIONARY = pa.array([o.value for o in OUTCOMES], type=pa.string())

SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("scheduled_ns", pa.int64()),
        ("sent_ns", pa.int64()),
        ("ended_ns", pa.int64()),
        ("outcome", pa.dictionary(pa.int8(), pa.string())),
        ("status", pa.int16()),
        ("errno", pa.int16()),
        ("error", pa.string()),
        ("conn_id", pa.int64()),
        ("conn_reused", pa.bool_()),
        ("pod", pa.string()),
        ("route_pod", pa.string()),
        ("worker", pa.int16()),
    ]
)
COLUMNS = tuple(SCHEMA.names)
REQUESTS_DIR = "requests"


class RequestWriter:
    """Column buffers plus an Arrow IPC stream; ``add`` is the hot path.

    Integer columns live in ``array.array`` so a flush hands their memory to
    Arrow without a per-element conversion.
    """

    __slots__ = ("path", "worker", "_sink", "_writer", "ints", "error", "pod", "route_pod", "rows_written")

    #: the integer fields of a row, interleaved in one buffer (one C call per row)
    INT_FIELDS = ("seq", "scheduled_ns", "sent_ns", "ended_ns", "outcome", "status", "errno", "conn_id", "conn_reused")

    def __init__(self, path: str | os.PathLike, worker: int = 0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.worker = worker
        self._sink = pa.OSFile(str(self.path), "wb")
        self._writer = ipc.new_stream(self._sink, SCHEMA)
        self.rows_written = 0
        self._reset()

    def _reset(self) -> None:
        # The buffers are cleared in place after each flush, never replaced, so a
        # hot loop may hold their bound ``extend``/``append`` methods.
        self.ints = array.array("q")
        self.error: list[str | None] = []
        self.pod: list[str | None] = []
        self.route_pod: list[str | None] = []

    def add(self, seq, scheduled_ns, sent_ns, ended_ns, outcome_code, status,
            errno, error, conn_id, reused, pod, route_pod) -> None:
        self.ints.extend((seq, scheduled_ns, sent_ns, ended_ns, outcome_code, status, errno, conn_id, reused))
        self.error.append(error)
        self.pod.append(pod)
        self.route_pod.append(route_pod)

    def __len__(self) -> int:
        return len(self.pod)

    def flush(self) -> int:
        n = len(self.pod)
        if n == 0:
            return 0
        cols = np.array(self.ints, dtype=np.int64).reshape(n, len(self.INT_FIELDS)).T  # a copy
        seq, sched, sent, ended, outcome, status, errno_, conn_id, reused = cols
        batch = pa.record_batch(
            [
                pa.array(seq),
                pa.array(sched),
                pa.array(sent),
                pa.array(ended),
                pa.DictionaryArray.from_arrays(pa.array(outcome.astype(np.int8)), OUTCOME_DICTIONARY),
                pa.array(status.astype(np.int16)),
                pa.array(errno_.astype(np.int16)),
                pa.array(self.error, type=pa.string()),
                pa.array(conn_id),
                pa.array(reused.astype(bool)),
                pa.array(self.pod, type=pa.string()),
                pa.array(self.route_pod, type=pa.string()),
                pa.array(np.full(n, self.worker, dtype=np.int16)),
            ],
            schema=SCHEMA,
        )
        self._writer.write_batch(batch)
        self._sink.flush()
        self.rows_written += n
        del self.ints[:]
        self.error.clear()
        self.pod.clear()
        self.route_pod.clear()
        return n

    def close(self) -> None:
        if self._writer is None:
            return
        self.flush()
        self._writer.close()
        self._sink.close()
        self._writer = None


def _empty_table() -> pa.Table:
    return SCHEMA.empty_table()


def read_request_file(path: str | os.PathLike) -> tuple[pa.Table, bool]:
    """Read one worker's stream; returns (table, complete). A truncated tail
    (the process died mid-write) is dropped and reported as incomplete."""
    batches: list[pa.RecordBatch] = []
    complete = True
    try:
        with pa.memory_map(str(path), "r") as source:
            reader = ipc.open_stream(source)
            while True:
                try:
                    batches.append(reader.read_next_batch())
                except StopIteration:
                    break
    except (pa.ArrowInvalid, OSError, EOFError):
        complete = False
    if not batches:
        return _empty_table(), complete
    return pa.Table.from_batches(batches, schema=SCHEMA), complete


def request_files(run_dir: str | os.PathLike) -> list[Path]:
    d = Path(run_dir) / REQUESTS_DIR
    return sorted(d.glob("*.arrow")) if d.is_dir() else []


def read_requests_table(run_dir: str | os.PathLike) -> tuple[pa.Table, bool]:
    tables, complete = [], True
    for f in request_files(run_dir):
        t, ok = read_request_file(f)
        complete &= ok
        tables.append(t)
    if not tables:
        return _empty_table(), complete
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    return table, complete


def read_requests(run_dir: str | os.PathLike):
    """All request records of a run as a pandas DataFrame sorted by seq.

    ``outcome`` is a categorical of Outcome values; string columns hold None
    where empty.
    """
    table, _ = read_requests_table(run_dir)
    df = table.to_pandas()
    if len(df):
        df = df.sort_values("seq", kind="stable").reset_index(drop=True)
    return df


def outcome_codes(table: pa.Table) -> np.ndarray:
    """Each record's outcome as an index into OUTCOMES (int8). The writer's
    dictionary is OUTCOMES itself, so its indices are used as they are (no
    string work per row); an unknown value (a newer writer) maps to other."""
    if not table.num_rows:
        return np.array([], dtype=np.int8)
    col = table.column("outcome").combine_chunks()
    values = col.dictionary.to_pylist()
    idx = col.indices.to_numpy(zero_copy_only=False)
    known = [o.value for o in OUTCOMES]
    if values == known[: len(values)]:
        return idx.astype(np.int8)
    other = known.index("other")
    remap = np.array([known.index(v) if v in known else other for v in values], dtype=np.int8)
    return remap[idx]
