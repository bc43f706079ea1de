"""`rollout-harness report` on the command line: exit codes and one line why."""

from __future__ import annotations

from harness.cli import main
from tests.analysis.builders import rollout


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
