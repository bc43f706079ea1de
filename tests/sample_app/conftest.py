"""Start the sample app as a real subprocess on 127.0.0.1 (PORT=0: the kernel
picks a free port, the app reports it in its ``listening`` log line) and talk
to it over raw sockets, so tests see exactly what a client would: status,
headers, FIN or RST. Every wait is bounded; every process is killed in the
fixture's finalizer."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "sample-app" / "app.py"
WAIT = 20.0  # generous bound for anything the app should do "at once"


def load_app_module():
    spec = importlib.util.spec_from_file_location("sample_app_module", APP)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("sample_app_module", mod)
    spec.loader.exec_module(mod)
    return mod


class AppProcess:
    def __init__(self, env: dict[str, str]):
        full = {k: v for k, v in os.environ.items() if k not in ("PORT", "HOST", "POD_NAME")}
        full.update({"PORT": "0", "HOST": "127.0.0.1", "POD_NAME": "test-pod", "PYTHONUNBUFFERED": "1"})
        full.update(env)
        self.proc = subprocess.Popen([sys.executable, str(APP)], env=full, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = 0

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def events(self) -> list[dict]:
        with self._cond:
            return [json.loads(line) for line in self.lines]

    def wait_event(self, name: str, timeout: float = WAIT) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    ev = json.loads(line)
                    if ev.get("event") == name:
                        return ev
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no {name!r} event within {timeout}s; log: {self.lines}; "
                                         f"stderr: {self._stderr()}")
                self._cond.wait(min(left, 0.2))

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read()

    def wait_listening(self) -> int:
        self.port = self.wait_event("listening")["port"]
        return self.port

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = WAIT) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT)
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()

    # -- raw HTTP/1.1 over a socket --------------------------------------------------

    def connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=WAIT)
        s.settimeout(WAIT)
        return s

    def send(self, sock: socket.socket, path: str) -> None:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())

    def read_response(self, sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed before a full response header (got {buf!r})")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed inside the body")
            body += chunk
        return status, headers, body

    def get(self, path: str, sock: socket.socket | None = None) -> tuple[int, dict[str, str], bytes]:
        own = sock is None
        sock = sock or self.connect()
        try:
            self.send(sock, path)
            return self.read_response(sock)
        finally:
            if own:
                sock.close()


@pytest.fixture
def start_app():
    """``start_app(WARMUP_SECONDS="1", ...)`` -> a listening AppProcess."""
    started: list[AppProcess] = []

    def start(wait_listening: bool = True, **env: str) -> AppProcess:
        app = AppProcess({k: str(v) for k, v in env.items()})
        started.append(app)
        if wait_listening:
            app.wait_listening()
        return app

    yield start
    for app in started:
        app.kill()


@pytest.fixture(scope="session")
def app_module():
    return load_app_module()
