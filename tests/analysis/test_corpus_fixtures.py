"""Tables recorded from real corpus runs (tests/analysis/fixtures/corpus-*,
written by corpus/fixtures.py) analysed without any server.

Each fixture carries what its full run gave (failures, findings, attribution)
and what the platform's ground truth says happened to each failure
(corpus/groundtruth.py). These tests pin the recording itself: the thinned
table analyses like the full run did, and the ground truth recomputed from
the fixture is the one recorded. Rule tests can build on them: the
``truth_top`` of each fixture is the finding the diagnosis should lead with.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.analysis import analyse

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "corpus"))
import fixtures as corpus_fixtures  # noqa: E402
import groundtruth  # noqa: E402

NAMES = sorted(p.name[len("corpus-"):-len(".json")] for p in corpus_fixtures.FIXTURES.glob("corpus-*.json"))


def _source(name: str) -> dict:
    return json.loads((corpus_fixtures.FIXTURES / f"corpus-{name}.json").read_text())["source"]


def test_there_are_corpus_fixtures_of_each_mechanism():
    truths = set()
    for n in NAMES:
        truths |= set(_source(n)["ground_truth"])
    assert {"refused-after-signal", "new-conn-after-stop", "idle-close-race"} <= truths, truths


@pytest.mark.parametrize("name", NAMES)
def test_fixture_ground_truth_is_reproduced(name, tmp_path):
    run_dir = corpus_fixtures.materialise(name, tmp_path)
    src = _source(name)
    assert groundtruth.counts(run_dir) == src["ground_truth"]
    a = analyse(run_dir)
    assert a.summary["service_failed"] == src["full_run"]["service_failed"]
    fails = {k: v for k, v in a.summary["rollout_window"]["outcomes"].items() if k != "ok"}
    assert fails == src["full_run"]["rollout_failures"]


@pytest.mark.parametrize("name", NAMES)
def test_attribution_on_real_corpus_tables(name, tmp_path):
    """The platform recorded where every failure of these runs went; the
    attribution must be right at least as often as when the table was
    recorded (a regression on a real server's table fails here)."""
    a = analyse(corpus_fixtures.materialise(name, tmp_path))
    acc = a.summary["attribution"]["accuracy"]
    assert acc is not None
    full = _source(name)["full_run"]
    assert acc["accuracy"] >= round(full["attribution_correct"] / full["service_failed"], 4), acc
