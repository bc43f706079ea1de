"""The Deployment controller's arithmetic against tables worked out from
Kubernetes' rolling.go / recreate.go, plus a simulated rollout that checks
the invariants maxSurge and maxUnavailable promise."""

import pytest

from harness.model.scenario import resolve_int_or_percent
from harness.platforms.local.rollout import (RSCounts, ScaleStep, recreate_step, rolling_update_step,
                                             rollout_complete)

R = RSCounts

ROLLING = [
    # id, desired, surge, unavail, old, new, expected
    ("initial-create", 4, 1, 0, R(0, 0), R(0, 0), ScaleStep(4, 0)),
    ("surge1-start", 4, 1, 0, R(4, 4), R(0, 0), ScaleStep(1, 0)),
    ("surge1-new-not-ready", 4, 1, 0, R(4, 4), R(1, 0), ScaleStep(0, 0)),
    ("surge1-new-available", 4, 1, 0, R(4, 4), R(1, 1), ScaleStep(0, 1)),
    ("surge1-after-scale-down", 4, 1, 0, R(3, 3), R(1, 1), ScaleStep(1, 0)),
    ("25pct-of-4-start", 4, 1, 1, R(4, 4), R(0, 0), ScaleStep(1, 1)),
    ("surge0-unavail1-start", 4, 0, 1, R(4, 4), R(0, 0), ScaleStep(0, 1)),
    ("surge0-unavail1-replace", 4, 0, 1, R(3, 3), R(0, 0), ScaleStep(1, 0)),
    ("surge0-unavail1-wait", 4, 0, 1, R(3, 3), R(1, 0), ScaleStep(0, 0)),
    ("unhealthy-old-first", 4, 1, 1, R(4, 2), R(0, 0), ScaleStep(1, 1)),
    ("unhealthy-old-blocked", 4, 1, 0, R(4, 2), R(1, 0), ScaleStep(0, 0)),
    ("25pct-of-10", 10, 3, 2, R(10, 10), R(0, 0), ScaleStep(3, 2)),
    ("last-old-pod", 4, 1, 0, R(1, 1), R(4, 4), ScaleStep(0, 1)),
    ("complete", 4, 1, 0, R(0, 0), R(4, 4), ScaleStep(0, 0)),
]


@pytest.mark.parametrize("desired,surge,unavail,old,new,expected", [c[1:] for c in ROLLING],
                         ids=[c[0] for c in ROLLING])
def test_rolling_update_step(desired, surge, unavail, old, new, expected):
    assert rolling_update_step(desired, surge, unavail, old, new) == expected


@pytest.mark.parametrize("value,total,up,expected", [
    ("25%", 4, True, 1), ("25%", 4, False, 1), ("25%", 10, True, 3), ("25%", 10, False, 2),
    ("10%", 4, True, 1), ("10%", 4, False, 0), (2, 4, True, 2), ("0%", 4, True, 0),
], ids=["25%-of-4-surge", "25%-of-4-unavail", "25%-of-10-surge", "25%-of-10-unavail",
        "10%-of-4-surge-rounds-up", "10%-of-4-unavail-rounds-down", "int", "zero"])
def test_percentages_round_as_kubernetes(value, total, up, expected):
    assert resolve_int_or_percent(value, total, round_up=up) == expected


@pytest.mark.parametrize("desired,surge,unavail", [(4, 1, 0), (4, 0, 1), (4, 1, 1), (10, 3, 2), (3, 2, 0), (1, 1, 0)],
                         ids=["4-s1-u0", "4-s0-u1", "4-s1-u1", "10-s3-u2", "3-s2-u0", "1-s1-u0"])
def test_simulated_rollout_keeps_its_promises(desired, surge, unavail):
    """New pods become available one sync after creation; every sync the
    controller's step is applied. Pods never exceed replicas + maxSurge,
    availability never falls below replicas - maxUnavailable, and it ends."""
    old_avail, new_total, new_avail = desired, 0, 0
    for sync in range(100):
        old, new = R(old_avail, old_avail), R(new_total, new_avail)
        if rollout_complete(desired, old, new):
            break
        step = rolling_update_step(desired, surge, unavail, old, new)
        new_total += step.scale_up
        old_avail -= step.scale_down
        assert old_avail + new_total <= desired + surge
        assert old_avail + new_avail >= desired - unavail
        new_avail = new_total  # what was created becomes available by the next sync
    else:
        pytest.fail("the rollout never completed")
    assert (old_avail, new_total) == (0, desired)


RECREATE = [
    ("delete-all-old", R(4, 4), R(0, 0), 4, ScaleStep(0, 4)),
    ("wait-for-old-to-terminate", R(0, 0), R(0, 0), 2, ScaleStep(0, 0)),
    ("create-new", R(0, 0), R(0, 0), 0, ScaleStep(4, 0)),
    ("done", R(0, 0), R(4, 4), 0, ScaleStep(0, 0)),
]


@pytest.mark.parametrize("old,new,running,expected", [c[1:] for c in RECREATE], ids=[c[0] for c in RECREATE])
def test_recreate_step(old, new, running, expected):
    assert recreate_step(4, old, new, running) == expected


@pytest.mark.parametrize("old,new,done", [
    (R(0, 0), R(4, 4), True), (R(1, 1), R(4, 4), False), (R(0, 0), R(4, 3), False), (R(0, 0), R(3, 3), False),
], ids=["all-new-available", "old-left", "new-not-available", "too-few"])
def test_rollout_complete(old, new, done):
    assert rollout_complete(4, old, new) is done
