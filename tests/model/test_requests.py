"""Request records (harness.model.requests): every column round-trips; a torn last batch is skipped."""

from __future__ import annotations

from harness.model.outcome import Outcome
from harness.model.requests import COLUMNS, RequestWriter, read_request_file, read_requests


def _write(path, n_batches, rows=100):
    w = RequestWriter(path, worker=0)
    for b in range(n_batches):
        for i in range(rows):
            seq = b * rows + i
            w.add(seq, seq, seq + 1, seq + 2, 0, 200, 0, None, 1, i > 0, "pod-a", None)
        w.flush()
    return w


def test_round_trip_has_every_column(tmp_path):
    w = _write(tmp_path / "requests" / "worker-000.arrow", 3)
    w.close()
    df = read_requests(tmp_path)
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == 300 and list(df.seq[:3]) == [0, 1, 2]
    assert set(df.outcome.astype(str)) == {Outcome.OK.value}


def test_truncated_last_batch_is_skipped_not_fatal(tmp_path):
    path = tmp_path / "requests" / "worker-000.arrow"
    _write(path, 3)  # never closed: as after SIGKILL
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 500)  # tear the last batch
    table, complete = read_request_file(path)
    assert not complete
    assert table.num_rows == 200
