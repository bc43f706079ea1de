"""Record batches through a text stream and back, and their conversion to
the run clock as they arrive."""

import pyarrow as pa
import pytest

from harness.model.requests import RequestWriter, read_request_file
from harness.traffic.collect import GeneratorRecords, to_run_clock
from harness.traffic.recordwire import MAX_LINE, Reassembler, encode_batch, status_line


def _batch(tmp_path, n, worker=2, start=0):
    w = RequestWriter(tmp_path / f"src-{start}.arrow", worker=worker)
    for i in range(start, start + n):
        sent = -1 if i % 7 == 0 else 1_000 + i * 10 + 3
        w.add(i, 1_000 + i * 10, sent, 1_000 + i * 10 + 50, 1 if i % 7 == 0 else 0, 200, 0,
              None, 5, True, f"pod-{i % 3}", None)
    w.close()
    t, _ = read_request_file(w.path)
    return t.to_batches()[0]


def test_a_batch_survives_the_wire_in_many_lines(tmp_path):
    batch = _batch(tmp_path, 3000)
    lines = encode_batch(batch, generator=2, number=7, max_line=2000)
    assert len(lines) > 1 and all(len(x) <= 2000 for x in lines)
    r = Reassembler()
    out = [item for line in lines for item in r.feed(line)]
    assert len(out) == 1 and out[0][0] == "batch"
    assert out[0][1].equals(batch)


def test_status_lines_and_foreign_lines(tmp_path):
    r = Reassembler()
    assert list(r.feed("some log line of the runtime")) == []
    assert list(r.feed(status_line(event="heartbeat", issued=3))) == [("status", {"event": "heartbeat", "issued": 3})]


def test_a_batch_missing_a_part_is_skipped_and_counted(tmp_path):
    a = encode_batch(_batch(tmp_path, 2000), generator=0, number=0, max_line=1000)
    b = encode_batch(_batch(tmp_path, 10, start=5000), generator=0, number=1)
    r = Reassembler()
    got = [x for line in a[:-2] + b for x in r.feed(line)]  # the stream restarted mid-batch
    assert [k for k, _ in got] == ["batch"] and got[0][1].num_rows == 10
    assert r.torn == 1


def test_times_move_to_the_run_clock_and_never_sent_stays(tmp_path):
    batch = _batch(tmp_path, 10)
    out = to_run_clock(batch, 1_000)
    sched = out.column("scheduled_ns").to_pylist()
    sent = out.column("sent_ns").to_pylist()
    assert sched == [i * 10 for i in range(10)]
    assert sent[0] == -1 and sent[1] == 13
    assert out.column("seq").equals(batch.column("seq"))


def test_records_are_written_converted_as_they_arrive(tmp_path):
    rec = GeneratorRecords(2, tmp_path / "requests" / "generator-002.arrow", now=lambda: 42)
    lines = encode_batch(_batch(tmp_path, 100), generator=2, number=0) + \
        encode_batch(_batch(tmp_path, 50, start=100), generator=2, number=1)
    rec.feed(status_line(event="ready"))
    rec.feed(lines[0])  # before the offset is known: held back
    rec.set_offset(1_000)
    for line in lines[1:]:
        rec.feed(line)
    rec.feed(status_line(event="done", sent_rows=150))
    # readable while the stream goes on (before close), as a crash would leave it
    table, _ = read_request_file(rec.path)
    assert table.num_rows == 150
    rec.close()
    table, complete = read_request_file(rec.path)
    assert complete and table.num_rows == 150 and rec.rows == 150 and rec.batches == 2
    assert table.column("scheduled_ns").to_pylist()[:2] == [0, 10]
    assert set(table.column("worker").to_pylist()) == {2}
    assert rec.done == {"event": "done", "sent_rows": 150} and rec.last_heard == 42


@pytest.mark.parametrize("n", [1, 500])
def test_lines_stay_under_the_runtime_limit(tmp_path, n):
    assert all(len(x) <= MAX_LINE for x in encode_batch(_batch(tmp_path, n), generator=0, number=0))
