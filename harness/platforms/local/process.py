"""Replica processes: start one, read its log, signal it, and make sure none
outlives the harness.

Each replica runs in its own session (process group), so a terminal's Ctrl-C
reaches only the harness, which then tears down in order. Two safety nets
cover a harness that dies without tearing down (SIGKILL, a crash in C code):
PR_SET_PDEATHSIG makes the kernel kill the replica when the harness goes, and
a watchdog process holding the read end of a pipe kills every registered
process group when the pipe closes, which also catches the replica's own
children.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Callable

_PR_SET_PDEATHSIG = 1
_libc = None


def _default_signals_prefix() -> list[str]:
    """A container starts with every signal at its default action (runc resets
    them); a child of this process would inherit whatever the harness's own
    parent ignored (an interactive shell or a CI runner often ignores
    SIGQUIT, so a server whose documented reaction to SIGQUIT is to die
    would survive it here). GNU env >= 8.31 resets them before the exec."""
    env = shutil.which("env")
    if env is None:
        return []
    try:
        ok = subprocess.run([env, "--default-signal", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return [env, "--default-signal", "--"] if ok else []


def _die_with_parent() -> None:  # runs in the child between fork and exec
    global _libc
    for sig in (signal.SIGQUIT, signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


# ---- the process-group registry and its watchdog ------------------------------

_WATCHDOG = r"""
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups = set()
for line in sys.stdin:
    line = line.strip()
    if line.startswith('+'): groups.add(int(line[1:]))
    elif line.startswith('-'): groups.discard(int(line[1:]))
for g in groups:
    try: os.killpg(g, signal.SIGKILL)
    except OSError: pass
"""


class ProcessGroups:
    """Every replica's process group, killed on teardown, at exit, and by the
    watchdog if the harness itself is killed."""

    def __init__(self) -> None:
        self.groups: set[int] = set()
        self._lock = threading.Lock()
        self._watchdog: subprocess.Popen | None = None
        atexit.register(self.kill_all)

    def _ensure_watchdog(self) -> None:
        if self._watchdog is not None and self._watchdog.poll() is None:
            return
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, text=True, bufsize=1)

    def _tell(self, line: str) -> None:
        try:
            self._ensure_watchdog()
            assert self._watchdog is not None and self._watchdog.stdin is not None
            self._watchdog.stdin.write(line + "\n")
            self._watchdog.stdin.flush()
        except (OSError, ValueError):
            pass  # the pdeathsig and teardown still hold

    def add(self, pgid: int) -> None:
        with self._lock:
            self.groups.add(pgid)
            self._tell(f"+{pgid}")

    def discard(self, pgid: int) -> None:
        with self._lock:
            self.groups.discard(pgid)
            self._tell(f"-{pgid}")

    def kill_all(self) -> None:
        with self._lock:
            for g in list(self.groups):
                kill_group(g)
            self.groups.clear()
            if self._watchdog is not None:
                try:
                    if self._watchdog.stdin:
                        self._watchdog.stdin.close()
                    self._watchdog.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    self._watchdog.kill()
                self._watchdog = None


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


#: one registry per harness process
PROCESS_GROUPS = ProcessGroups()


# ---- ports ------------------------------------------------------------------------

class PortAllocator:
    """A fresh port for each replica, never reused within a run (a stale proxy
    view must reach a dead port, not the next pod), below the kernel's
    ephemeral range so the engine's outgoing connections cannot hold it, and
    picked at random so harness runs side by side rarely race for one."""

    LOW = 20000

    def __init__(self, host: str, rng: random.Random | None = None):
        self.host = host
        self.rng = rng or random.Random()
        self._limit = max(_ephemeral_low(), self.LOW + 1000)
        self._used: set[int] = set()

    def allocate(self) -> int:
        for _ in range(4000):
            port = self.rng.randrange(self.LOW, self._limit)
            if port in self._used:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((self.host, port))
                except OSError:
                    continue
            self._used.add(port)
            return port
        raise OSError(f"no free port on {self.host}")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# ---- spawning -----------------------------------------------------------------------

class _Spawner:
    """Forks children from one long-lived thread, off the event loop.

    Forking from the loop stalls it for tens of milliseconds in a process this
    size (uvloop always forks; asyncio forks whenever a preexec_fn is set),
    and the stall would show up as send lag in the traffic engine. A plain
    ``subprocess.Popen`` without preexec_fn uses vfork (about a millisecond);
    PR_SET_PDEATHSIG is set by ``setpriv`` in the child instead. The thread
    never exits, because the kernel sends the death signal when the *thread*
    that forked the child ends.
    """

    def __init__(self) -> None:
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.setpriv = shutil.which("setpriv")
        self.default_signals = _default_signals_prefix()

    def _serve(self) -> None:
        while True:  # this thread must never die: the children's death signal is tied to it
            fn, fut, loop = self._q.get()
            result, error = None, None
            try:
                result = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
                error = exc
            try:
                loop.call_soon_threadsafe(_settle, fut, result, error)
            except RuntimeError:  # the loop closed while we forked: nobody will own this child
                if result is not None:
                    kill_group(result.pid)
                    result.wait()

    async def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="replica-spawner", daemon=True)
                self._thread.start()
        if self.setpriv:
            argv = [self.setpriv, "--pdeathsig", "KILL", "--", *self.default_signals, *argv]
        else:
            kwargs["preexec_fn"] = _die_with_parent
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._q.put((lambda: subprocess.Popen(argv, start_new_session=True, close_fds=True, **kwargs), fut, loop))
        return await fut


def _settle(fut: asyncio.Future, result, exc) -> None:
    if fut.cancelled():
        if result is not None:  # nobody waits for it: do not leave it running
            kill_group(result.pid)
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


SPAWNER = _Spawner()


class Child:
    """A child process with an awaitable exit (pidfd) and, optionally, its
    output as an asyncio stream."""

    def __init__(self, popen: subprocess.Popen, argv: list[str]):
        self.popen = popen
        self.argv = argv
        self.pid = popen.pid
        self.returncode: int | None = None
        self._exited = asyncio.Event()
        self._pidfd: int | None = None
        self.stdout: asyncio.StreamReader | None = None
        loop = asyncio.get_running_loop()
        try:
            self._pidfd = os.pidfd_open(self.pid)
            loop.add_reader(self._pidfd, self._on_exit)
        except (OSError, AttributeError):
            self._pidfd = None
            loop.create_task(self._poll())

    @classmethod
    async def spawn(cls, argv: list[str], *, env: dict[str, str], cwd: str, capture: bool) -> "Child":
        out = subprocess.PIPE if capture else subprocess.DEVNULL
        try:
            popen = await SPAWNER.popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT if capture else subprocess.DEVNULL)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot start {argv[0]!r} (in {cwd}): {exc.strerror}") from exc
        PROCESS_GROUPS.add(popen.pid)
        child = cls(popen, argv)
        if capture:
            assert popen.stdout is not None
            loop = asyncio.get_running_loop()
            reader = asyncio.StreamReader(limit=1 << 20)
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), popen.stdout)
            child.stdout = reader
        return child

    def _on_exit(self) -> None:
        if self.popen.poll() is None:
            return
        self._reap()

    async def _poll(self) -> None:
        while self.popen.poll() is None:
            await asyncio.sleep(0.05)
        self._reap()

    def _reap(self) -> None:
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self.returncode = self.popen.returncode
        kill_group(self.pid)  # children the app left behind die with the container
        PROCESS_GROUPS.discard(self.pid)
        self._exited.set()

    @property
    def running(self) -> bool:
        return self.returncode is None

    def signal(self, sig: int) -> bool:
        if not self.running:
            return False
        try:
            os.kill(self.pid, sig)
            return True
        except ProcessLookupError:
            return False

    def kill(self) -> bool:
        """SIGKILL the whole group, as a container runtime kills the cgroup."""
        return kill_group(self.pid)

    async def wait(self) -> int:
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode


# ---- one replica process --------------------------------------------------------------

STOP_SIGNALS = {name: getattr(signal, name) for name in
                ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2")}


def exit_code_of(returncode: int) -> int:
    """A container's exit code: 128 + signal for a signal death."""
    return 128 - returncode if returncode < 0 else returncode


class Replica(Child):
    """One running container: the process, its log file and last lines."""

    log_path: Path
    tail: deque

    @classmethod
    async def start(cls, argv: list[str], *, env: dict[str, str], cwd: str, log_path: Path) -> "Replica":
        log_path.parent.mkdir(parents=True, exist_ok=True)
        replica = await cls.spawn(argv, env=env, cwd=cwd, capture=True)
        replica.log_path = log_path
        replica.tail = deque(maxlen=20)
        return replica  # type: ignore[return-value]

    async def pump_log(self, on_line: Callable[[str], None]) -> None:
        """Copy the app's output to its log file; hand each line to ``on_line``."""
        assert self.stdout is not None
        with open(self.log_path, "ab", buffering=0) as f:
            while True:
                try:
                    raw = await self.stdout.readline()
                except (ValueError, asyncio.LimitOverrunError):  # a line beyond the stream limit
                    raw = await self.stdout.read(65536)
                if not raw:
                    return
                f.write(raw)
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.tail.append(line)
                on_line(line)
