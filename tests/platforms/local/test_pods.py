"""The pod template: a repeated rollout of an unchanged template is a
restart (new restartedAt), so run --repeat replaces every pod each time."""

from pathlib import Path

from harness.model.scenario import load_scenario
from harness.platforms.local.pods import Template

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"


def test_a_change_already_rolled_out_rolls_out_again_as_a_restart():
    sc = load_scenario(SCENARIOS / "best-practice.yaml")  # change: APP_VERSION 1 -> 2
    t1 = Template.initial(sc)
    t2 = t1.changed(sc, restarted_at="100")
    assert dict(t2.env)["APP_VERSION"] == "2" and t2.restarted_at == "" and t2.hash() != t1.hash()
    t3 = t2.changed(sc, restarted_at="200")  # the same change again: nothing new but the annotation
    assert t3.env == t2.env and t3.restarted_at == "200" and t3.hash() not in (t1.hash(), t2.hash())
    assert t3.changed(sc, restarted_at="300").hash() not in (t1.hash(), t2.hash(), t3.hash())
    assert [t.revision for t in (t1, t2, t3)] == [1, 2, 3]


def test_a_restart_disruption_is_unchanged():
    sc = load_scenario(SCENARIOS / "best-practice.yaml", ["disruption.type=restart"])
    t1 = Template.initial(sc)
    assert t1.changed(sc, restarted_at="5").restarted_at == "5"


def test_only_a_rollout_repeats_on_one_deployment(tmp_path):
    """run --repeat rolls one Deployment out again and again; a drain leaves
    its nodes cordoned, so each drain gets a new Deployment."""
    from harness.model.clock import RunClock
    from harness.model.events import EventWriter
    from harness.platforms.local import LocalPlatform

    for extra, want in (([], True), (["disruption.type=restart"], True), (["disruption.type=evict"], False)):
        sc = load_scenario(SCENARIOS / "best-practice.yaml", extra)
        events = EventWriter(tmp_path / f"{len(extra)}-{want}.jsonl")
        try:
            assert LocalPlatform(sc, tmp_path, RunClock.start(), events).repeatable_disrupt is want
        finally:
            events.close()
