"""The diagnosis holds on the corpus tables (tests/analysis/fixtures/corpus-*,
recorded from real servers by the corpus matrix, with the mechanism the
local platform's ground truth gives each failure, corpus/groundtruth.py):
the top finding is the one the ground truth names, attribution is >= 99%
right on the failures it pins on one pod (the rest ambiguous, with the real
pod among the candidates), and the ground truth contradicts no finding."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.analysis import analyse

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "corpus"))
import fixtures as corpus_fixtures  # noqa: E402

NAMES = sorted(p.name[len("corpus-"):-len(".json")] for p in corpus_fixtures.FIXTURES.glob("corpus-*.json"))


@pytest.mark.parametrize("name", NAMES)
def test_the_diagnosis_holds_on_a_real_server(name, tmp_path):
    src = json.loads((corpus_fixtures.FIXTURES / f"corpus-{name}.json").read_text())["source"]
    a = analyse(corpus_fixtures.materialise(name, tmp_path))
    s = a.summary
    # "a|b": a tie the ground truth cannot break
    assert s["top_finding"] in src["truth_top"].split("|"), ([(f["rule"], f["failures"]) for f in a.findings], src["ground_truth"])
    acc = s["attribution"]["accuracy"]
    assert acc["accuracy"] >= 0.99, acc
    assert acc["ambiguous_real_pod_in_candidates"] == acc["ambiguous"], acc
    assert s["ground_truth"]["findings_contradicted"] == 0, [(f["rule"], f.get("ground_truth")) for f in a.findings]
    # every race the ground truth saw is one a retrying client absorbs
    races = sum(n for m, n in src["ground_truth"].items() if m in ("idle-close-race", "idle-cut-at-exit"))
    assert s["client_view"]["retried_transparently"] >= races
