"""`rollout-harness compare` on the command line: exit codes and one line why."""

from __future__ import annotations

from harness.cli import main
from tests.analysis.builders import rollout


def test_compare(tmp_path, capsys):
    a = rollout(tmp_path / "a", "best-practice")
    b = rollout(tmp_path / "b", "no-graceful-shutdown")
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "best-practice" in out and "no-graceful-shutdown" in out and "compare.html" in out
    assert (tmp_path / "cmp" / "compare.png").is_file()
