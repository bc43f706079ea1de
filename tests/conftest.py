"""Fixtures shared across the test tree.

``real_rollout(name)``: one real rollout of a shipped scenario on the local
platform (real replica processes, real traffic, through the CLI as a user
runs it), shared by every test of the session that looks at that scenario
(tests/test_runner.py: what failed and how; tests/analysis/test_real_runs.py:
the findings and attribution), so each scenario is rolled out once, not once
per test file. A run whose verdict is inconclusive (the machine was too busy
to see the whole rollout) is run once more; a test that needs a conclusive
run then fails with the reason, never skips.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from tests.traffic import servers

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
#: shorter baseline and settle than shipped; the rollout itself keeps each scenario's timings
REAL_RUN_SETS = ("disruption.baselineSeconds=2", "disruption.settleSeconds=2")


@dataclasses.dataclass
class RealRun:
    name: str
    out: Path
    proc: subprocess.CompletedProcess
    analysis: object  # harness.analysis.Analysis of the run dir
    attempts: int

    @property
    def inconclusive_reason(self) -> str | None:
        v = self.analysis.summary["verdict"]
        return "; ".join(v.get("reasons") or ["inconclusive"]) if v["status"] == "inconclusive" else None

    def require_conclusive(self) -> None:
        reason = self.inconclusive_reason
        if reason is not None:
            pytest.fail(f"{self.name}: inconclusive in {self.attempts} runs (the last: {reason}); "
                        f"run dir {self.out}")


def _rollout(name: str, out: Path) -> tuple[subprocess.CompletedProcess, object]:
    from harness.analysis import analyse

    args = [sys.executable, "-m", "harness", "run", str(SCENARIOS / f"{name}.yaml"), "--out", str(out),
            "--no-report", "-q"]
    for s in REAL_RUN_SETS:
        args += ["--set", s]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert (out / "manifest.json").exists(), proc.stderr[-3000:]
    return proc, analyse(out)


@pytest.fixture(scope="session")
def real_rollout(tmp_path_factory):
    root = tmp_path_factory.mktemp("real-rollouts")
    cache: dict[str, RealRun] = {}

    def get(name: str) -> RealRun:
        if name.startswith("ingress-"):
            from harness.platforms.ingress.traefik import binary_path

            if not binary_path().is_file():
                pytest.skip(f"{name} runs through Traefik, which is not built at {binary_path()} "
                            "(it needs Go: make traefik)")
        if name not in cache:
            for attempt in (1, 2):
                out = root / f"{name}-{attempt}"
                proc, a = _rollout(name, out)
                cache[name] = RealRun(name, out, proc, a, attempt)
                if cache[name].inconclusive_reason is None:
                    break
        return cache[name]

    return get


@pytest.fixture(autouse=True)
def _private_history(tmp_path_factory, monkeypatch):
    """Every test keeps the run history (reports/history.sqlite, docs/proof.md)
    in its own temporary file, never in the checkout's reports/."""
    monkeypatch.setenv("ROLLOUT_HARNESS_HISTORY", str(tmp_path_factory.mktemp("history") / "history.sqlite"))


@pytest.fixture
def server_factory():
    """Tiny local servers on 127.0.0.1 that misbehave in one way each (tests/traffic/servers.py)."""
    made = []

    def make(behave, **kw):
        s = servers.Server(behave, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
