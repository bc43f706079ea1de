"""Request records as text lines, for generators whose only way back to the
harness is their stdout (read through the API server's pod log stream, so
no network path from the pods to the harness is needed).

A record batch (the engine's Arrow batch, harness.model.requests.SCHEMA) is
written as a self-contained Arrow IPC stream, compressed (zstd), base64,
cut into lines of at most ``MAX_LINE`` characters (container runtimes
split longer lines: containerd at 16 KiB):

    RHB <generator> <batch no> <part>/<parts> <base64>

Other lines the generator prints (status, heartbeats) are ``RHS <json>``;
anything else is ignored by the reader. ``Reassembler`` joins the parts of
a batch back (parts arrive in order on one stream) and returns the batch.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.ipc as ipc

BATCH, STATUS = "RHB", "RHS"
MAX_LINE = 8000


def _options() -> ipc.IpcWriteOptions:
    try:
        return ipc.IpcWriteOptions(compression="zstd")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):  # pragma: no cover - built without zstd
        return ipc.IpcWriteOptions()


_OPTIONS = _options()


def encode_batch(batch: pa.RecordBatch, *, generator: int, number: int, max_line: int = MAX_LINE) -> list[str]:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, batch.schema, options=_OPTIONS) as w:
        w.write_batch(batch)
    text = base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")
    room = max(64, max_line - 40)
    chunks = [text[i:i + room] for i in range(0, len(text), room)] or [""]
    n = len(chunks)
    return [f"{BATCH} {generator} {number} {k + 1}/{n} {c}" for k, c in enumerate(chunks)]


def status_line(**fields: Any) -> str:
    return f"{STATUS} " + json.dumps(fields, separators=(",", ":"))


def decode_batch(data: bytes) -> pa.RecordBatch:
    reader = ipc.open_stream(pa.BufferReader(data))
    batches = list(reader)
    if len(batches) != 1:
        raise ValueError(f"expected one record batch, got {len(batches)}")
    return batches[0]


class Reassembler:
    """Feed lines of one generator's stream; get back what they carry."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._key: tuple[int, int] | None = None
        self.torn = 0  # batches whose parts did not all arrive (a restarted stream)
        self.bad = 0  # lines that looked like ours but did not decode

    def feed(self, line: str) -> Iterator[tuple[str, Any]]:
        """("batch", RecordBatch) or ("status", dict) for each complete item."""
        line = line.rstrip("\r\n")
        if line.startswith(STATUS + " "):
            try:
                yield "status", json.loads(line[len(STATUS) + 1:])
            except ValueError:
                self.bad += 1
            return
        if not line.startswith(BATCH + " "):
            return
        try:
            _, gen, number, frac, payload = line.split(" ", 4)
            part, parts = (int(x) for x in frac.split("/"))
            key = (int(gen), int(number))
        except ValueError:
            self.bad += 1
            return
        if part == 1:
            if self._parts:
                self.torn += 1
            self._parts, self._key = [], key
        elif key != self._key or part != len(self._parts) + 1:
            self.torn += 1
            self._parts, self._key = [], None
            return
        self._parts.append(payload)
        if part == parts:
            data = "".join(self._parts)
            self._parts, self._key = [], None
            try:
                yield "batch", decode_batch(base64.b64decode(data))
            except (ValueError, pa.ArrowInvalid):
                self.bad += 1
