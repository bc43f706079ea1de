"""The generator pod's program (``python -m harness.traffic.generator``):
one engine on its share of the schedule, started on the harness's signal,
its records written to stdout as they are flushed.

Why stdout: the harness reads it through the API server's pod log stream,
which needs no network path from the pods to the harness and keeps what a
pod wrote until the pod object is gone. The engine flushes a record batch
every half second into its Arrow file; a tailer thread reads each batch as
it lands and prints it as lines (harness.traffic.recordwire). A killed
generator loses at most the batch not yet flushed (0.5 s) plus the tail
poll (0.1 s). A SIGTERM (the pod deleted) aborts the traffic and flushes
what was recorded, then the process exits.

Control (through the API server's pod proxy, no Service needed), on
``RH_CONTROL_PORT``:

    GET /clock         {"t": <this pod's monotonic ns>}  (NTP-style exchange)
    GET /start?at=NS   start the schedule at NS on this pod's clock
    GET /stop?at=NS    end the schedule at NS (this pod's clock), then drain;
                       without at (or a second /stop): stop now, then abort
    GET /exit          exit now (after the harness's end-of-run exchange)

The generator's clock is the raw CLOCK_MONOTONIC of its node; the harness
converts (harness.traffic.clocksync). Every wait is bounded: no start within
``start_timeout`` ends the pod, the schedule ends after ``max_duration``,
and the pod exits ``exit_timeout`` after its traffic ended.

Environment: RH_GENERATOR (JSON: engine settings, max_duration, timeouts),
RH_GENERATORS (count), JOB_COMPLETION_INDEX (this generator's index).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import queue
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from harness.model.clock import RunClock
from harness.model.generators import CONTROL_PORT
from harness.traffic.config import EngineConfig
from harness.traffic.recordwire import encode_batch, status_line

DEFAULT_PORT = CONTROL_PORT
HEARTBEAT_S = 0.5
TAIL_POLL_S = 0.1


@dataclasses.dataclass
class Settings:
    index: int
    count: int
    config: EngineConfig
    max_duration: float
    port: int = DEFAULT_PORT
    start_timeout: float = 600.0
    exit_timeout: float = 60.0

    @classmethod
    def from_env(cls, env=os.environ) -> "Settings":
        spec = json.loads(env["RH_GENERATOR"])
        engine = dict(spec["engine"])
        url = engine.pop("url").replace("{host_ip}", env.get("HOST_IP", "127.0.0.1"))
        cfg = EngineConfig(url=url, duration=None, **engine)
        return cls(index=int(env.get("JOB_COMPLETION_INDEX", "0")), count=int(env.get("RH_GENERATORS", "1")),
                   config=cfg, max_duration=float(spec["max_duration"]),
                   port=int(env.get("RH_CONTROL_PORT", DEFAULT_PORT)),
                   start_timeout=float(spec.get("start_timeout", 600.0)),
                   exit_timeout=float(spec.get("exit_timeout", 60.0)))


class Out:
    """Lines to stdout from one thread, so a blocked pipe never stalls the
    event loop and lines never interleave."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.q: queue.Queue[str | None] = queue.Queue()
        self.lines = 0
        self._t = threading.Thread(target=self._run, name="stdout", daemon=True)
        self._t.start()

    def put(self, line: str) -> None:
        self.q.put(line)

    def _run(self) -> None:
        while True:
            first = self.q.get()
            if first is None:
                return
            lines = [first]
            while True:  # write what is queued in one go
                try:
                    nxt = self.q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._write(lines)
                    return
                lines.append(nxt)
            self._write(lines)

    def _write(self, lines: list[str]) -> None:
        self.stream.write("".join(f"{x}\n" for x in lines))
        self.stream.flush()
        self.lines += len(lines)

    def close(self, timeout: float = 10.0) -> None:
        self.q.put(None)
        self._t.join(timeout)


class GrowingFile(io.RawIOBase):
    """A file being appended to, read as a blocking stream: a read waits for
    the bytes until ``finished`` is set (then the end of the file is EOF)."""

    def __init__(self, path: Path, finished: threading.Event, poll: float = TAIL_POLL_S):
        self._f = open(path, "rb")
        self._finished, self._poll = finished, poll

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        view = memoryview(b)
        got = 0
        while got < len(view):
            n = self._f.readinto(view[got:])
            if n:
                got += n
                continue
            if self._finished.is_set():
                n = self._f.readinto(view[got:])  # what landed just before the end
                if not n:
                    break
                got += n
                continue
            time.sleep(self._poll)
        return got

    def close(self) -> None:
        self._f.close()
        super().close()


def tail_records(path: Path, finished: threading.Event, out: Out, index: int) -> dict[str, int]:
    """Every batch the engine flushes into ``path``, as lines on ``out``."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    stats = {"batches": 0, "rows": 0, "lines": 0, "bytes": 0}
    src = GrowingFile(path, finished)
    try:
        reader = ipc.open_stream(pa.PythonFile(src, mode="r"))
        for batch in reader:
            lines = encode_batch(batch, generator=index, number=stats["batches"])
            for line in lines:
                out.put(line)
            stats["batches"] += 1
            stats["rows"] += batch.num_rows
            stats["lines"] += len(lines)
            stats["bytes"] += sum(len(x) + 1 for x in lines)
    except (pa.ArrowInvalid, OSError, EOFError) as exc:  # a torn tail (aborted): what was read is out
        out.put(status_line(event="tail_error", error=str(exc)))
    finally:
        src.close()
    return stats


class Generator:
    def __init__(self, settings: Settings, out: Out, work_dir: Path):
        self.s, self.out, self.work_dir = settings, out, work_dir
        # raw CLOCK_MONOTONIC: now() is the node's monotonic clock, converted by the harness
        self.clock = RunClock(monotonic_anchor_ns=0, wall_anchor_ns=time.time_ns() - time.monotonic_ns())
        self.start_at: asyncio.Future | None = None
        self.exit_now = asyncio.Event()
        self.engine = None
        self.stops = 0
        self.terminated = False

    # -- control server
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            t = time.monotonic_ns()  # as close to the request's arrival as this process can read it
            target = head.split(b" ", 2)[1].decode("latin-1")
            status, body = self.route(target, t)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, IndexError):
            status, body = 400, {"error": "bad request"}
        data = json.dumps(body).encode()
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (status, len(data), data))
        try:
            await writer.drain()
            writer.close()
        except OSError:
            pass

    def route(self, target: str, t: int) -> tuple[int, dict]:
        u = urlsplit(target)
        q = parse_qs(u.query)
        if u.path == "/clock":
            return 200, {"t": t, "index": self.s.index}
        if u.path == "/start":
            try:
                at = int(q["at"][0])
            except (KeyError, ValueError):
                return 400, {"error": "start needs at=<ns on this pod's clock>"}
            if self.start_at is not None and not self.start_at.done():
                self.start_at.set_result(at)
            return 200, {"t": t, "at": at}
        if u.path == "/stop":
            try:
                at = int(q["at"][0]) if "at" in q else None
            except ValueError:
                return 400, {"error": "stop takes at=<ns on this pod's clock>"}
            if at is not None and self.stops == 0 and self.engine is not None and at > t:
                # one end for all generators: the schedule ends at ``at`` (seqs due
                # before it are still sent), so the merged schedule has no gap
                self.engine.end_ns = min(self.engine.end_ns, at)
                self.stops += 1
            else:
                self.stop()
            return 200, {"t": t, "stops": self.stops}
        if u.path == "/exit":
            self.exit_now.set()
            return 200, {"t": t}
        if u.path == "/healthz":
            return 200, {"t": t}
        return 404, {"error": f"no {u.path}"}

    def stop(self) -> None:
        """Stop now and drain; any later stop aborts what is in flight."""
        self.stops += 1
        if self.engine is not None:
            self.engine.stop()
            if self.stops > 1:
                self.engine.stop()
        elif self.start_at is not None and not self.start_at.done():
            self.start_at.set_result(None)

    def on_sigterm(self) -> None:
        """The pod is being deleted: abort the traffic, flush, exit."""
        self.terminated = True
        self.out.put(status_line(event="sigterm", t=time.monotonic_ns()))
        self.stop()
        self.stop()
        self.exit_now.set()

    async def heartbeat(self) -> None:
        while True:
            e = self.engine
            live = e.live if e is not None else None
            self.out.put(status_line(event="heartbeat", t=time.monotonic_ns(), issued=live.issued if live else 0,
                                     completed=live.completed if live else 0,
                                     failed=live.failed if live else 0, dropped=live.dropped if live else 0,
                                     counts=list(live.counts) if live else [],
                                     lag_max_ms=live.take_lag_max_ms() if live else 0.0,
                                     connections=live.connections if live else 0))
            await asyncio.sleep(HEARTBEAT_S)

    async def main(self) -> int:
        from harness.traffic.engine import Engine

        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.on_sigterm)
        self.start_at = loop.create_future()
        server = await asyncio.start_server(self.handle, host="0.0.0.0", port=self.s.port)
        hb = asyncio.ensure_future(self.heartbeat())
        self.out.put(status_line(event="ready", index=self.s.index, count=self.s.count,
                                 pod=os.environ.get("POD_NAME", ""), node=os.environ.get("NODE_NAME", ""),
                                 url=self.s.config.url, t=time.monotonic_ns()))
        try:
            try:
                at = await asyncio.wait_for(asyncio.shield(self.start_at), self.s.start_timeout)
            except asyncio.TimeoutError:
                at = None
            if at is None or self.terminated:
                self.out.put(status_line(event="done", started=False, reason="no start signal"))
                return 1
            cfg = dataclasses.replace(self.s.config, duration=self.s.max_duration)
            engine = Engine(cfg, clock=self.clock, out_dir=self.work_dir, worker=self.s.index,
                            workers=self.s.count, start_ns=at)
            self.engine = engine
            if self.stops:
                engine.stop()
            finished = threading.Event()
            tail = loop.run_in_executor(None, tail_records, engine.path, finished, self.out, self.s.index)
            self.out.put(status_line(event="started", at=at, t=time.monotonic_ns()))
            try:
                result = await engine.run()
            finally:
                finished.set()
            stats = await tail
            self.out.put(status_line(event="done", started=True, start_ns=result.start_ns, end_ns=result.end_ns,
                                     rows=result.rows, interrupted=result.interrupted or self.terminated,
                                     terminated=self.terminated, cpu_s=round(result.cpu_s, 3),
                                     **{f"sent_{k}": v for k, v in stats.items()}))
            try:
                await asyncio.wait_for(self.exit_now.wait(), self.s.exit_timeout)
            except asyncio.TimeoutError:
                pass
            return 0
        finally:
            hb.cancel()
            server.close()


def main() -> int:
    from harness.traffic.workers import run_on_fast_loop

    settings = Settings.from_env()
    out = Out()
    with tempfile.TemporaryDirectory(prefix="rh-gen-") as tmp:
        gen = Generator(settings, out, Path(tmp))
        try:
            code = run_on_fast_loop(gen.main)
        finally:
            out.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
