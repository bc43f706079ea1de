"""Replica process helpers: ports, exit codes, the app's log lines."""

import random
import signal
import socket

import pytest

from harness.platforms.applog import parse_app_log
from harness.platforms.local.process import PortAllocator, _ephemeral_low, exit_code_of


def test_ports_are_fresh_free_and_below_the_ephemeral_range():
    alloc = PortAllocator("127.0.0.1", rng=random.Random(5))
    ports = [alloc.allocate() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(PortAllocator.LOW <= p < _ephemeral_low() for p in ports)


def test_a_port_in_use_is_skipped():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        taken = busy.getsockname()[1]

        class Fixed(random.Random):
            def __init__(self):
                super().__init__(1)
                self.first = True

            def randrange(self, a, b):
                if self.first:
                    self.first = False
                    return taken
                return super().randrange(a, b)

        alloc = PortAllocator("127.0.0.1", rng=Fixed())
        alloc.LOW = 0
        assert alloc.allocate() != taken


@pytest.mark.parametrize("returncode,code", [(0, 0), (3, 3), (-15, 143), (-9, 137)],
                         ids=["clean", "error", "sigterm", "sigkill"])
def test_exit_codes_as_a_container_runtime_reports_them(returncode, code):
    assert exit_code_of(returncode) == code


@pytest.mark.parametrize("line,event", [
    ('{"ts": 1764131400.5, "pod": "api-1", "event": "sigterm_received"}', "sigterm_received"),
    ('{"ts": 1764131400, "event": "ready", "warmup_seconds": 2}', "ready"),
    ('{"event": "ready"}', None),
    ('{"ts": "yesterday", "event": "ready"}', None),
    ("INFO: Uvicorn running on http://127.0.0.1:8000", None),
    ('{"ts": 1, "event": "x"', None),
    ("[1, 2]", None),
], ids=["sample-app", "int-ts-extra-field", "no-ts", "ts-not-a-number", "plain-text", "torn-json", "json-not-object"])
def test_only_json_lifecycle_lines_become_events(line, event):
    rec = parse_app_log(line)
    assert (rec["event"] if rec else None) == event


_SIGNAL_PROBE = r"""
import asyncio, os, signal, sys
signal.signal(signal.SIGQUIT, signal.SIG_IGN)   # as an interactive shell or a CI runner leaves it
from harness.platforms.local.process import Child

async def main():
    c = await Child.spawn(["sh", "-c", "grep SigIgn /proc/self/status"], env=dict(os.environ), cwd=".", capture=True)
    print((await c.stdout.read()).decode().strip())
asyncio.run(main())
"""


def test_a_replica_starts_with_default_signal_actions_as_in_a_container():
    """A replica must not inherit SIG_IGN from the harness's parent: found with
    hypercorn, whose documented death on SIGQUIT (no handler) turned into a
    20 s wait for SIGKILL because the shell that started the run ignored it."""
    import subprocess
    import sys
    from pathlib import Path
    out = subprocess.run([sys.executable, "-c", _SIGNAL_PROBE], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[3])
    assert out.returncode == 0, out.stderr[-2000:]
    mask = int(out.stdout.split("SigIgn:")[1].split()[0], 16)
    assert not mask & (1 << (signal.SIGQUIT - 1)), f"SIGQUIT still ignored in the replica: SigIgn {mask:#x}"
