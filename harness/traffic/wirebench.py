"""Synthetic record batches through the generators' record path, as fast
as it takes them: the measurement behind the choice of the pod log stream
(docs/generators.md, bench/logstream.py).

    python -m harness.traffic.wirebench --seconds 10 --rows 2000 [--tcp HOST:PORT]

Each batch holds ``rows`` realistic request records (the engine's schema,
pod names, keep-alive connections) and is written as harness.traffic.recordwire
lines, preceded by a status line carrying the batch number and the moment it
was written (CLOCK_MONOTONIC, so a reader on the same node measures latency).
To stdout (the log stream), or to a TCP collector (the alternative).
"""

from __future__ import annotations

import argparse
import socket
import sys
import time

import numpy as np
import pyarrow as pa

from harness.model.requests import OUTCOME_DICTIONARY, SCHEMA
from harness.traffic.recordwire import encode_batch, status_line


def synthetic_batch(rows: int, first_seq: int, t0: int) -> pa.RecordBatch:
    seq = np.arange(first_seq, first_seq + rows, dtype=np.int64)
    sched = t0 + seq * 100_000
    sent = sched + np.random.randint(20_000, 400_000, rows)
    ended = sent + np.random.randint(15_000_000, 40_000_000, rows)
    pods = np.array([f"api-7c9f8d6b5-{c}" for c in ("x2k4p", "q8s7d", "m3n9v", "t6w1z")], dtype=object)
    return pa.record_batch([
        pa.array(seq), pa.array(sched), pa.array(sent), pa.array(ended),
        pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, np.int8)), OUTCOME_DICTIONARY),
        pa.array(np.full(rows, 200, np.int16)), pa.array(np.zeros(rows, np.int16)),
        pa.array([None] * rows, type=pa.string()), pa.array((seq % 16) + (1 << 40)),
        pa.array(seq % 2 == 0), pa.array(pods[seq % 4], type=pa.string()),
        pa.array([None] * rows, type=pa.string()), pa.array(np.zeros(rows, np.int16)),
    ], schema=SCHEMA)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rows", type=int, default=2000, help="records per batch")
    ap.add_argument("--tcp", default="", help="HOST:PORT of a collector instead of stdout")
    a = ap.parse_args(argv)
    if a.tcp:
        host, port = a.tcp.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=10)
        out = sock.makefile("w", encoding="ascii", buffering=1 << 20)
    else:
        out = sys.stdout
    end = time.monotonic() + min(a.seconds, 600.0)
    n = 0
    t0 = time.monotonic_ns()
    while time.monotonic() < end:
        batch = synthetic_batch(a.rows, n * a.rows, t0)
        lines = encode_batch(batch, generator=0, number=n)
        out.write(status_line(event="bench", n=n, t=time.monotonic_ns(), rows=a.rows) + "\n")
        out.write("\n".join(lines) + "\n")
        out.flush()
        n += 1
    out.write(status_line(event="bench_done", batches=n, rows=n * a.rows) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
