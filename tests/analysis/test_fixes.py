"""A finding's fix as scenario overrides, or named as an app change."""

from pathlib import Path

import pytest

from harness.analysis.fixes import deployment_fix, top_failing_finding
from harness.model.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def test_prestop_fix_uses_the_runs_suggestion_and_applies_cleanly():
    sc = load_scenario(SCENARIOS / "no-prestop.yaml")
    f = {"rule": "no-prestop", "failures": 9, "evidence": {"suggested_prestop_s": 2.0}}
    fix = deployment_fix(f, sc)
    assert fix.applicable and fix.overrides == ["deployment.lifecycle.preStop.sleep.seconds=2"]
    fixed = load_scenario(SCENARIOS / "no-prestop.yaml", fix.overrides)
    assert fixed.deployment.lifecycle.pre_stop.sleep.seconds == 2


def test_prestop_fix_raises_a_grace_period_it_would_exceed():
    sc = load_scenario(SCENARIOS / "no-prestop.yaml", ["deployment.terminationGracePeriodSeconds=2"])
    fix = deployment_fix({"rule": "prestop-too-short", "evidence": {"suggested_prestop_s": 3.5}}, sc)
    fixed = load_scenario(SCENARIOS / "no-prestop.yaml", ["deployment.terminationGracePeriodSeconds=2"] + fix.overrides)
    assert fixed.deployment.termination_grace_period_seconds > 3.5


def test_upstream_keepalive_fix_sets_the_proxys_idle_timeout_below_the_apps():
    sc = load_scenario(SCENARIOS / "ingress-keepalive-mismatch.yaml")
    f = {"rule": "upstream-keepalive", "failures": 40,
         "evidence": {"app_keepalive_timeout_s": 0.02, "suggested_upstream_idle_timeout_s": 0.01}}
    fix = deployment_fix(f, sc)
    assert fix.applicable and fix.overrides == ["traffic.ingress.upstreamIdleTimeoutSeconds=0.01"]
    fixed = load_scenario(SCENARIOS / "ingress-keepalive-mismatch.yaml", fix.overrides)
    assert fixed.traffic.ingress.upstream_idle_timeout_seconds == 0.01 < 0.02
    assert "90 s -> 0.01 s" in fix.text


def test_upstream_keepalive_fix_guesses_no_value_when_the_apps_timeout_is_unknown():
    sc = load_scenario(SCENARIOS / "ingress-keepalive-mismatch.yaml")
    fix = deployment_fix({"rule": "upstream-keepalive", "failures": 3,
                          "evidence": {"suggested_upstream_idle_timeout_s": None}}, sc)
    assert not fix.applicable and not fix.overrides and "not known" in fix.text


def test_upstream_keepalive_fix_raises_the_sample_apps_keep_alive_when_no_proxy_value_is_safe():
    sc = load_scenario(SCENARIOS / "ingress-keepalive-mismatch.yaml")
    f = {"rule": "upstream-keepalive", "failures": 90, "evidence": {
        "app_keepalive_timeout_s": 0.02, "suggested_upstream_idle_timeout_s": None,
        "suggested_app_keepalive_timeout_s": 91.0}}
    fix = deployment_fix(f, sc)
    assert fix.applicable and fix.overrides == ["disruption.change.env.KEEPALIVE_TIMEOUT=91"], fix
    fixed = load_scenario(SCENARIOS / "ingress-keepalive-mismatch.yaml", fix.overrides)
    assert float(fixed.disruption.change.env["KEEPALIVE_TIMEOUT"]) > fixed.traffic.ingress.upstream_idle_timeout_seconds
    # any other app: named, not applied
    other = load_scenario(SCENARIOS / "ingress-keepalive-mismatch.yaml", ["app.command=[./server]"])
    assert not deployment_fix(f, other).applicable and "needs the app changed" in deployment_fix(f, other).text


def test_surge_fix():
    sc = load_scenario(SCENARIOS / "surge-zero.yaml")
    fix = deployment_fix({"rule": "capacity-dip", "failures": 30}, sc)
    fixed = load_scenario(SCENARIOS / "surge-zero.yaml", fix.overrides)
    assert (fixed.max_surge(), fixed.max_unavailable()) == (1, 0)
    assert "maxSurge 0 -> 1" in fix.text


def test_grace_fix_covers_prestop_drain_and_the_longest_request():
    sc = load_scenario(SCENARIOS / "short-grace.yaml")
    f = {"rule": "short-grace", "evidence": {"longest_request_s": 8.2, "oldest_cut_request_s": 6.0,
                                             "app_drain_s": 2.0}}
    fix = deployment_fix(f, sc)
    want = int(fix.overrides[0].split("=")[1])
    prestop = sc.deployment.lifecycle.pre_stop.sleep.seconds
    assert want >= prestop + 2.0 + 8.2 + 1


def test_app_fixes_are_named_not_applied():
    sc = load_scenario(SCENARIOS / "no-graceful-shutdown.yaml")
    for rule in ("no-graceful-shutdown", "keepalive-cut", "premature-readiness", "keepalive-close-race"):
        fix = deployment_fix({"rule": rule, "failures": 4}, sc)
        assert not fix.applicable and not fix.overrides and "app" in fix.text
    assert not deployment_fix(None, sc).applicable
    assert not deployment_fix({"rule": "unexplained"}, sc).applicable


def test_readiness_probe_path_is_only_assumed_for_the_sample_app():
    sc = load_scenario(SCENARIOS / "no-readiness-probe.yaml")
    assert deployment_fix({"rule": "no-readiness-probe"}, sc).applicable
    other = load_scenario(SCENARIOS / "no-readiness-probe.yaml", ['app.command=["./my-server"]'])
    assert not deployment_fix({"rule": "no-readiness-probe"}, other).applicable


def test_top_failing_finding_skips_findings_without_failures():
    fs = [{"rule": "capacity-dip", "failures": 0}, {"rule": "no-prestop", "failures": 5},
          {"rule": "unexplained", "failures": 2}]
    assert top_failing_finding(fs)["rule"] == "no-prestop"
    assert top_failing_finding([{"rule": "unexplained", "failures": 2}]) is None


def test_no_proxy_idle_timeout_is_suggested_within_the_least_margin_even_when_the_run_measured_less():
    """A 20 ms keep-alive: one run's failed attempts took only 5 ms, but 10 ms of margin is no fix."""
    from harness.analysis.ingress_rules import MIN_MARGIN_MS, keepalive_fix

    text, proxy_idle, app_keepalive = keepalive_fix(90.0, 0.02, 5.0)
    assert proxy_idle is None and app_keepalive is not None and app_keepalive > 90
    assert f"least margin of {MIN_MARGIN_MS:g} ms" in text
    text, proxy_idle, _ = keepalive_fix(90.0, 5.0, 5.0)  # seconds of keep-alive: a proxy value is safe
    assert proxy_idle == 4.0
