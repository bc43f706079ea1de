"""The keep-alive mismatch only the ingress reveals, as a real rollout on the
local platform: the real Traefik binary (`make traefik`) in front of real
replica processes whose new version closes idle keep-alive connections
after 20 ms while the proxy keeps them 90 s
(scenarios/ingress-keepalive-mismatch.yaml, docs/ingress.md "A keep-alive
mismatch that fails every run").

One `run --verify-fix`, through the CLI as a user runs it. Before: the
proxy's own 502/500s on serving pods of the new version, for the reason
written down (the proxy's log: a connection the pod had closed, not a
refused dial), with the upstream-keepalive finding. The fix: at a 20 ms
keep-alive the proxy's own delays (its failed attempts take tens of ms on
this machine) exceed any margin an idle timeout below 20 ms leaves, so the
rule recommends, and verify-fix applies for the sample app, the app's
keep-alive above the proxy's; after: no failure. verify-fix runs a blind
(inconclusive) run once more; a test still without a conclusive run fails
with the reason. Nothing about timings is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.analysis.ingress_rules import CLOSED_CONN

from tests.conftest import ROOT, SCENARIOS

pytestmark = pytest.mark.slow

NAME = "ingress-keepalive-mismatch"
#: shorter baseline than shipped; the settle keeps enough of the new version's traffic to show the race
SETS = ("disruption.baselineSeconds=2", "disruption.settleSeconds=8")


@pytest.fixture(scope="module")
def verified(tmp_path_factory):
    from harness.platforms.ingress.traefik import binary_path

    if not binary_path().is_file():
        pytest.skip(f"{NAME} runs through Traefik, which is not built at {binary_path()} (it needs Go: make traefik)")
    out = tmp_path_factory.mktemp("keepalive") / "verify-fix"
    args = [sys.executable, "-m", "harness", "run", str(SCENARIOS / f"{NAME}.yaml"), "--verify-fix",
            "--out", str(out), "-q"]
    for s in SETS:
        args += ["--set", s]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
    record_file = out / "verify-fix.json"
    assert record_file.exists(), proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc, json.loads(record_file.read_text())


def _conclusive(rec: dict, which: str):
    from harness.analysis import analyse

    if which not in rec:
        pytest.fail(f"{NAME}: no {which} run: {rec.get('result')}")
    a = analyse(rec[which]["dir"])
    v = a.summary["verdict"]
    if v["status"] == "inconclusive":
        pytest.fail(f"{NAME} {which}: inconclusive twice (the last: {'; '.join(v.get('reasons') or [])}); "
                    f"run dir {rec[which]['dir']}")
    return a


def test_the_mismatch_fails_for_the_reason_written_down(verified):
    proc, rec = verified
    a = _conclusive(rec, "before")
    s = a.summary
    assert s["verdict"]["status"] == "fail", (s["verdict"], proc.stderr[-2000:])
    # the client talks to the proxy: it sees only the proxy's own answers, 502 (EOF, reset) or
    # 500 (Go's "server closed idle connection")
    assert s["failed"] > 0 and set(s["outcomes"]) - {"ok"} <= {"http_502", "http_5xx"}, s["outcomes"]
    assert set(s["ingress"]["proxy_5xx"]) <= {"500", "502"}, s["ingress"]
    # the proxy's log says why: a connection the pod had closed, never a refused or timed-out dial
    errors = s["ingress"]["proxy_errors"]
    assert errors and all(any(w in e for w in CLOSED_CONN) for e in errors), errors
    # the old version (120 s keep-alive, above the proxy's 90 s) is the clean control
    assert s["phases"]["baseline"]["failed"] == 0, s["phases"]["baseline"]
    top = s["findings"][0]
    assert top["rule"] == "upstream-keepalive", [f["rule"] for f in s["findings"]]
    assert top["failures"] == s["failed"], (top["failures"], s["failed"])
    assert top["evidence"]["app_keepalive_timeout_s"] == 0.02 and top["evidence"]["upstream_idle_timeout_s"] == 90
    # each failure traced by the proxy's access log to a pod of the new version (never deleted in
    # the run), which was serving: not a terminating pod's
    att = a.attributed
    assert (att["how"] == "ingress-log").all(), att["how"].value_counts().to_dict()
    deleted = {ev["pod"] for ev in a.run.events if ev["kind"] == "deletion_requested"}
    assert len(deleted) == 4 and not set(att["pod"]) & deleted, (set(att["pod"]), deleted)


def test_the_fix_verify_fix_applies_makes_it_pass(verified):
    proc, rec = verified
    _conclusive(rec, "before")
    assert rec["fix"]["rule"] == "upstream-keepalive" and rec["fix"]["applicable"], rec["fix"]
    # no proxy idle timeout below 20 ms leaves a margin above the proxy's own delays: the app's keep-alive
    # goes above the proxy's 90 s
    (override,) = rec["fix"]["overrides"]
    key, value = override.split("=")
    assert key == "disruption.change.env.KEEPALIVE_TIMEOUT" and float(value) > 90, override
    a = _conclusive(rec, "after")
    s = a.summary
    assert s["verdict"]["status"] == "pass" and s["failed"] == 0, (s["outcomes"], rec["result"])
    assert rec["result"].startswith("verified"), rec["result"]
    assert proc.returncode == 0, proc.stdout[-2000:]
