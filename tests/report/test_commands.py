"""report / gate / compare on the command line: exit codes and one line why."""

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


def test_report_prints_the_verdict_and_the_path(tmp_path, capsys):
    d = rollout(tmp_path / "run", "no-prestop")
    assert main(["report", str(d)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("FAIL") and str(d / "index.html") in out and "fix:" in out
    assert (d / "index.html").is_file()


def test_report_bad_input(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["report", str(tmp_path / "run")]) == 2
    assert "manifest.json" in capsys.readouterr().err


def test_compare(tmp_path, capsys):
    a = rollout(tmp_path / "a", "best-practice")
    b = rollout(tmp_path / "b", "no-graceful-shutdown")
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "best-practice" in out and "no-graceful-shutdown" in out and "compare.html" in out
    assert (tmp_path / "cmp" / "compare.png").is_file()
