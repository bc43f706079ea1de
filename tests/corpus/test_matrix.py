"""The corpus (corpus/, docs/corpus.md): its shape, its written-down
expectations, and one real corpus server rolled out for real.

The static tests keep the matrix honest as it grows: every cell says what it
expects and cites the server's documentation; at least six servers from at
least four ecosystems, each in the three configurations users deploy. The
real run is gunicorn (installed by `make install`, pyproject's `corpus`
extra) without a preStop: a server nobody here wrote, whose documented SIGTERM
handling closes its listeners at once, so new connections routed to it during
endpoint propagation are refused and the diagnosis must say "no preStop".
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "corpus"))
import matrix  # noqa: E402

from harness.model.scenario import load_scenario  # noqa: E402

CELLS = sorted(matrix.SCENARIOS.glob("*.yaml"))
#: server -> ecosystem (a new server must say which)
ECOSYSTEM = {"gunicorn": "python", "hypercorn": "python", "go-nethttp": "go", "node-http": "node",
             "jdk-httpserver": "jvm", "nginx": "c"}


def test_matrix_covers_six_servers_four_ecosystems_three_configs():
    servers: dict[str, set[str]] = {}
    for f in CELLS:
        server, config = matrix.split_name(f.stem)
        assert config in matrix.CONFIGS, f"{f.name}: the config must be one of {matrix.CONFIGS}"
        servers.setdefault(server, set()).add(config)
    assert len(servers) >= 6, servers
    assert set(servers) <= set(ECOSYSTEM), f"say the ecosystem of {set(servers) - set(ECOSYSTEM)} in ECOSYSTEM"
    assert len({ECOSYSTEM[s] for s in servers}) >= 4
    for server, configs in servers.items():
        assert configs == set(matrix.CONFIGS), f"{server}: missing {set(matrix.CONFIGS) - configs}"


@pytest.mark.parametrize("path", CELLS, ids=[f.stem for f in CELLS])
def test_each_cell_states_its_expectation_and_cites_the_docs(path):
    sc = load_scenario(path)
    exp = matrix.expectation(sc.description, path.name)
    assert exp["verdict"] in ("pass", "fail")
    assert exp["top"] and all(t for t in exp["top"])
    assert "http" in sc.description, f"{path.name}: cite the server's documented shutdown behaviour (a URL)"
    prestop = sc.deployment.lifecycle.pre_stop is not None
    assert prestop == (not path.stem.endswith("no-prestop")), path.name


def test_expectation_parsing_rejects_a_description_without_one():
    with pytest.raises(matrix.ExpectationError, match="x.yaml: description has no 'Expected:"):
        matrix.expectation("a server that stops nicely", "x.yaml")
    e = matrix.expectation("... Expected: verdict=fail; top=a-b|none;\n failures=closed|reset. Because", "y")
    assert e == {"verdict": "fail", "top": ["a-b", "none"], "failures": ["closed", "reset"]}


def test_judge():
    exp = {"verdict": "fail", "top": ["keepalive-close-race", "none"], "failures": ["closed"]}
    assert matrix.judge(exp, "pass", None) == "match"  # the race did not happen this time
    assert matrix.judge(exp, "fail", "keepalive-close-race") == "match"
    assert matrix.judge(exp, "fail", "no-graceful-shutdown") == "mismatch"
    assert matrix.judge(exp, "inconclusive", None) == "inconclusive"
    strict = {"verdict": "fail", "top": ["no-prestop"], "failures": ["refused"]}
    assert matrix.judge(strict, "pass", None) == "mismatch"


@pytest.mark.slow
def test_gunicorn_without_prestop_is_diagnosed_as_such(tmp_path):
    """A real rollout of gunicorn 23 (3 replicas, 2 worker processes each),
    retried once if the machine was too busy to see it, then failed with the
    reason."""
    if importlib.util.find_spec("gunicorn") is None:
        pytest.fail("gunicorn is not installed in this environment: run `make install` (pyproject's corpus extra)")
    cell = matrix.SCENARIOS / "gunicorn-no-prestop.yaml"
    a, walls, reasons = matrix.run_cell(cell, tmp_path, ["disruption.baselineSeconds=2", "disruption.settleSeconds=2"])
    s = a.summary
    assert s["verdict"]["status"] != "inconclusive", f"inconclusive twice: {reasons}"
    outcomes = s["rollout_window"]["outcomes"]
    assert s["verdict"]["status"] == "fail", s["verdict"]
    assert outcomes.get("refused", 0) > 0, outcomes
    assert s["top_finding"] == "no-prestop", [f["title"] for f in s["findings"]]
    acc = s["attribution"]["accuracy"]
    assert acc is not None and acc["accuracy"] >= 0.95, acc
    # every pod the rollout deleted was seen to exit (gunicorn exits 0 after its graceful shutdown)
    old = [p for p in s["pods"] if p.get("deletion") is not None]
    assert len(old) == 3 and all(p.get("exited") is not None and p["exit_code"] == 0 for p in old), old
