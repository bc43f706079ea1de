"""`rollout-harness gate` on the command line: exit codes and one line why."""

from __future__ import annotations

import pytest

from harness.cli import main
from tests.analysis.builders import RunBuilder, rollout


@pytest.mark.parametrize("mistake,code", [("best-practice", 0), ("no-prestop", 1)], ids=["pass", "fail"])
def test_gate_exit_code(tmp_path, capsys, mistake, code):
    d = rollout(tmp_path / mistake, mistake)
    assert main(["gate", str(d)]) == code
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(("PASS", "FAIL"))


def test_gate_inconclusive(tmp_path, capsys):
    b = RunBuilder(tmp_path / "run", status="interrupted")
    b.phases(0, 1, 2, 3)
    assert main(["gate", str(b.write())]) == 3
    assert capsys.readouterr().out.startswith("INCONCLUSIVE")


def test_gate_bad_input(tmp_path, capsys):
    assert main(["gate", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "not a directory" in err and "Traceback" not in err
