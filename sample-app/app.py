"""The sample app: a small HTTP service whose shutdown behaviour is switchable.

It exists so every rolling-update mistake the harness diagnoses can be
reproduced on demand, on a cluster (see Dockerfile) or as plain processes on
the local platform. It behaves like a typical API server: a work endpoint
with a configurable latency distribution, a liveness endpoint, a readiness
endpoint that fails during warm-up and (optionally) from SIGTERM on, and a
graceful shutdown that can be turned off or made rude to keep-alive
connections.

Configuration comes ONLY from environment variables (the platforms set
PORT, HOST and POD_NAME); see sample-app/README.md and docs/scenarios.md.
Every lifecycle step is one JSON line on stdout:

    {"ts": 1764131400.123456, "pod": "api-1", "event": "listening", ...}

events: starting, listening, ready, sigterm_received, draining,
listener_closed, inflight_drained, exiting.

The HTTP layer is uvicorn (httptools parser, uvloop when installed), driven
programmatically: we never call ``Server.serve()``, so uvicorn installs no
signal handlers and its own shutdown never runs; this module owns the
sequence SIGTERM -> drain -> close listener -> close or reset connections ->
wait for in-flight -> exit, and uses uvicorn's connection set to close
(polite) or reset (abrupt) each open connection.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import parse_qs

#: idle keep-alive connections are kept this long (seconds) unless
#: KEEPALIVE_TIMEOUT says otherwise; longer than any client pool's (and
#: Traefik's 90 s) idle timeout, so by default the app never races a client on
#: an idle connection outside of shutdown.
KEEPALIVE_IDLE_TIMEOUT = 120
#: how often the shutdown loop looks at the open connections (seconds)
DRAIN_POLL = 0.01


class ConfigError(Exception):
    """An environment variable has a value the app cannot use."""


# ---- configuration ------------------------------------------------------------

def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number (default {default:g})") from None
    if not math.isfinite(value) or value < minimum:
        raise ConfigError(f"{name}={raw!r} must be a finite number >= {minimum:g}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer (default {default})") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name}={raw!r} must be between {minimum} and {maximum}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} must be true or false")


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower() or default
    if raw not in allowed:
        raise ConfigError(f"{name}={raw!r} must be one of {', '.join(allowed)}")
    return raw


@dataclass(frozen=True)
class Settings:
    port: int
    host: str
    pod: str
    version: str
    graceful_shutdown: bool
    drain_on_sigterm: bool
    drain_seconds: float
    shutdown_timeout: float
    keepalive_close: str  # "polite" | "abrupt"
    keepalive_timeout: float  # seconds an idle keep-alive connection is kept
    startup_delay: float
    warmup_seconds: float
    work_latency_ms: float
    work_latency_sigma: float
    slow_request_ratio: float
    slow_request_ms: float
    max_concurrency: int  # 0 = unlimited
    queue_timeout_ms: float  # 0 = wait for a slot for ever

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Settings":
        ratio = _float(env, "SLOW_REQUEST_RATIO", 0.0)
        if ratio > 1:
            raise ConfigError(f"SLOW_REQUEST_RATIO={ratio:g} must be between 0 and 1")
        return cls(
            port=_int(env, "PORT", 8080, minimum=0, maximum=65535),
            host=env.get("HOST", "").strip() or "0.0.0.0",
            pod=env.get("POD_NAME", "").strip() or socket.gethostname(),
            version=env.get("APP_VERSION", "").strip() or "1",
            graceful_shutdown=_bool(env, "GRACEFUL_SHUTDOWN", True),
            drain_on_sigterm=_bool(env, "DRAIN_ON_SIGTERM", True),
            drain_seconds=_float(env, "DRAIN_SECONDS", 0.0),
            shutdown_timeout=_float(env, "SHUTDOWN_TIMEOUT", 30.0),
            keepalive_close=_choice(env, "KEEPALIVE_CLOSE", "polite", ("polite", "abrupt")),
            keepalive_timeout=_float(env, "KEEPALIVE_TIMEOUT", KEEPALIVE_IDLE_TIMEOUT, minimum=0.001),
            startup_delay=_float(env, "STARTUP_DELAY", 0.0),
            warmup_seconds=_float(env, "WARMUP_SECONDS", 0.0),
            work_latency_ms=_float(env, "WORK_LATENCY_MS", 5.0),
            work_latency_sigma=_float(env, "WORK_LATENCY_SIGMA", 0.0),
            slow_request_ratio=ratio,
            slow_request_ms=_float(env, "SLOW_REQUEST_MS", 3000.0),
            max_concurrency=_int(env, "MAX_CONCURRENCY", 0, minimum=0, maximum=1_000_000),
            queue_timeout_ms=_float(env, "QUEUE_TIMEOUT_MS", 0.0),
        )


# ---- lifecycle log -------------------------------------------------------------

class LifecycleLog:
    """One flushed JSON line per lifecycle step, wall-clock seconds with µs."""

    def __init__(self, pod: str, out=None):
        self.pod = pod
        self.out = out or sys.stdout

    def event(self, event: str, **detail: Any) -> None:
        line = {"ts": round(time.time(), 6), "pod": self.pod, "event": event, **detail}
        self.out.write(json.dumps(line, separators=(",", ":")) + "\n")
        self.out.flush()


# ---- the HTTP app ----------------------------------------------------------------

class PodState:
    """What the endpoints answer depends on: warm yet? stop signal seen yet?"""

    def __init__(self) -> None:
        self.warm = False
        self.stopping = False
        self.inflight = 0


def pick_latency_ms(s: Settings, rnd: random.Random, query_ms: float | None) -> float:
    """The time one /work request takes: ?ms= wins; else SLOW_REQUEST_RATIO of
    requests take SLOW_REQUEST_MS; else lognormal around WORK_LATENCY_MS."""
    if query_ms is not None:
        return query_ms
    if s.slow_request_ratio > 0 and rnd.random() < s.slow_request_ratio:
        return s.slow_request_ms
    if s.work_latency_ms <= 0:
        return 0.0
    if s.work_latency_sigma <= 0:
        return s.work_latency_ms
    return rnd.lognormvariate(math.log(s.work_latency_ms), s.work_latency_sigma)


class App:
    """Raw ASGI app (no framework): /healthz, /ready, /work, else 404."""

    def __init__(self, settings: Settings, state: PodState, rnd: random.Random | None = None):
        self.s = settings
        self.state = state
        self.rnd = rnd or random.Random()
        self.slots = asyncio.Semaphore(settings.max_concurrency) if settings.max_concurrency else None
        self._base_headers = [
            (b"x-pod-name", settings.pod.encode("latin-1", "replace")),
            (b"x-app-version", settings.version.encode("latin-1", "replace")),
        ]

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _drain_body(receive)
        path = scope["path"]
        if path == "/healthz":
            await self._respond(send, 200, b"ok\n")
        elif path == "/ready":
            await self._ready(send)
        elif path == "/work":
            await self._work(scope, send)
        else:
            await self._respond(send, 404, b"not found\n")

    async def _ready(self, send: Callable) -> None:
        if not self.state.warm:
            await self._respond(send, 503, b"warming up\n")
        elif self.state.stopping and self.s.drain_on_sigterm:
            await self._respond(send, 503, b"draining\n")
        else:
            await self._respond(send, 200, b"ready\n")

    async def _work(self, scope: dict, send: Callable) -> None:
        if not self.state.warm:
            await self._respond(send, 503, b"warming up\n")
            return
        try:
            query_ms = _query_ms(scope.get("query_string", b""))
        except ValueError:
            await self._respond(send, 400, b"ms must be a number >= 0\n")
            return
        ms = pick_latency_ms(self.s, self.rnd, query_ms)
        self.state.inflight += 1
        try:
            if self.slots is None:
                await _sleep_ms(ms)
            elif not await self._take_slot():
                await self._respond(send, 503, b"overloaded\n")
                return
            else:
                try:
                    await _sleep_ms(ms)
                finally:
                    self.slots.release()
        finally:
            self.state.inflight -= 1
        body = b'{"pod":%s,"version":%s,"ms":%.3f}\n' % (
            json.dumps(self.s.pod).encode(), json.dumps(self.s.version).encode(), ms)
        await self._respond(send, 200, body, content_type=b"application/json")

    async def _take_slot(self) -> bool:
        """A worker slot, waiting at most QUEUE_TIMEOUT_MS (0: for ever)."""
        if self.s.queue_timeout_ms <= 0:
            await self.slots.acquire()
            return True
        try:
            async with asyncio.timeout(self.s.queue_timeout_ms / 1000.0):
                await self.slots.acquire()
        except TimeoutError:
            return False
        return True

    async def _respond(self, send: Callable, status: int, body: bytes, *,
                       content_type: bytes = b"text/plain; charset=utf-8") -> None:
        headers = [*self._base_headers, (b"content-type", content_type),
                   (b"content-length", b"%d" % len(body))]
        if self.state.stopping and self.s.keepalive_close == "polite":
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _drain_body(receive: Callable) -> None:
    while True:
        msg = await receive()
        if msg["type"] != "http.request" or not msg.get("more_body"):
            return


def _query_ms(query: bytes) -> float | None:
    if not query:
        return None
    values = parse_qs(query.decode("latin-1")).get("ms")
    if not values:
        return None
    ms = float(values[0])
    if not math.isfinite(ms) or ms < 0:
        raise ValueError(ms)
    return ms


async def _sleep_ms(ms: float) -> None:
    if ms > 0:
        await asyncio.sleep(ms / 1000.0)


# ---- process lifecycle --------------------------------------------------------------

def reset_connection(transport: asyncio.BaseTransport) -> None:
    """Close with RST instead of FIN: SO_LINGER on with a zero timeout, then abort."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


class Pod:
    """Runs one replica: startup delay, listen, warm-up, then the stop sequence."""

    def __init__(self, settings: Settings, log: LifecycleLog, early_signals: list[signal.Signals] | None = None):
        self.s = settings
        self.log = log
        self.state = PodState()
        self.server = None  # uvicorn.Server once listening
        self.stop_signal: asyncio.Future | None = None
        self.signals_seen = 0
        #: signals that arrived before the event loop ran (see catch_early_signals)
        self.early_signals = early_signals if early_signals is not None else []

    def on_signal(self, sig: signal.Signals) -> None:
        self.signals_seen += 1
        if self.signals_seen > 1:
            self.log.event("exiting", code=128 + sig, reason=f"second stop signal ({sig.name})")
            os._exit(128 + sig)
        self.log.event("sigterm_received", signal=sig.name)
        if not self.s.graceful_shutdown:
            # What an app without a shutdown handler does: the process vanishes,
            # in-flight requests are dropped, the kernel closes every socket.
            self.log.event("exiting", code=128 + sig, graceful=False,
                           inflight=self.state.inflight, open_connections=self._open_connections())
            os._exit(128 + sig)
        self.state.stopping = True
        if self.stop_signal is not None and not self.stop_signal.done():
            self.stop_signal.set_result(sig)

    def _open_connections(self) -> int:
        return len(self.server.server_state.connections) if self.server is not None else 0

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self.stop_signal = loop.create_future()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self.on_signal, sig)
        for sig in self.early_signals:
            self.on_signal(sig)
        if self.s.startup_delay > 0:
            await asyncio.wait([self.stop_signal], timeout=self.s.startup_delay)
        if not self.stop_signal.done():
            if not await self._listen():
                return 1
            await self._warm_up()
            await self.stop_signal
        return await self._stop()

    async def _listen(self) -> bool:
        import uvicorn

        config = uvicorn.Config(
            App(self.s, self.state), host=self.s.host, port=self.s.port,
            http=_http_impl(), lifespan="off", log_config=None, access_log=False,
            proxy_headers=False, server_header=False, timeout_keep_alive=self.s.keepalive_timeout,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        try:
            await server.startup()
        except SystemExit:  # uvicorn exits on a bind error after logging it to stderr
            self.log.event("exiting", code=1, reason=f"cannot listen on {self.s.host}:{self.s.port}")
            return False
        self.server = server
        self._date_ticker = asyncio.create_task(server.main_loop())  # refreshes the Date header
        port = server.servers[0].sockets[0].getsockname()[1]
        self.log.event("listening", host=self.s.host, port=port, pid=os.getpid())
        return True

    async def _warm_up(self) -> None:
        if self.s.warmup_seconds > 0:
            await asyncio.wait([self.stop_signal], timeout=self.s.warmup_seconds)
            if self.stop_signal.done():
                return
        self.state.warm = True
        self.log.event("ready", warmup_seconds=self.s.warmup_seconds)

    async def _stop(self) -> int:
        """The graceful stop: drain, close the listener, close or reset the
        open connections, wait for in-flight requests, exit."""
        if self.server is None:
            self.log.event("exiting", code=0, reason="stopped before listening")
            return 0
        self.log.event("draining", drain_seconds=self.s.drain_seconds,
                       readiness_failing=self.s.drain_on_sigterm, keepalive_close=self.s.keepalive_close)
        if self.s.drain_seconds > 0:
            await asyncio.sleep(self.s.drain_seconds)
        server = self.server
        for listener in server.servers:
            listener.close()
        conns = server.server_state.connections
        self.log.event("listener_closed", open_connections=len(conns), inflight=self.state.inflight)
        for proto in list(conns):
            if self.s.keepalive_close == "abrupt":
                reset_connection(proto.transport)
            else:
                proto.shutdown()  # idle: FIN now; busy: close after its response
        start = time.monotonic()
        deadline = start + self.s.shutdown_timeout
        while conns and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL)
        still_open = len(conns)
        self.log.event("inflight_drained", still_open=still_open, timed_out=bool(still_open),
                       waited_seconds=round(time.monotonic() - start, 3))
        self.log.event("exiting", code=0)
        return 0


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def catch_early_signals() -> list[signal.Signals]:
    """Record stop signals that arrive before the event loop runs (a platform
    may stop a replica right after starting it); Pod.run replays them."""
    seen: list[signal.Signals] = []
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, _frame: seen.append(signal.Signals(signum)))
    return seen


def _http_impl() -> str:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def _loop_factory():
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(env: Mapping[str, str] | None = None) -> int:
    try:
        settings = Settings.from_env(os.environ if env is None else env)
    except ConfigError as exc:
        print(f"sample-app: bad configuration: {exc}", file=sys.stderr, flush=True)
        return 2
    early_signals = catch_early_signals()
    log = LifecycleLog(settings.pod)
    log.event("starting", pid=os.getpid(), version=settings.version,
              graceful_shutdown=settings.graceful_shutdown, drain_on_sigterm=settings.drain_on_sigterm,
              drain_seconds=settings.drain_seconds, keepalive_close=settings.keepalive_close,
              startup_delay=settings.startup_delay, warmup_seconds=settings.warmup_seconds)
    runner = asyncio.Runner(loop_factory=_loop_factory())
    code = runner.run(Pod(settings, log, early_signals).run())
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip loop and interpreter teardown: handler tasks of reset connections may
    # still be sleeping, and nothing is left to flush.
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
