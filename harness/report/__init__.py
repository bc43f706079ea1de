"""The report of one run: summary.json, PNG charts, a self-contained
index.html and junit.xml, all written into the run dir.

    from harness.report import write_report
    summary = write_report("reports/no-prestop/20261126T050000-1234")
    summary["verdict"]  # {"status": "fail", "exit_code": 1, "reasons": [...], ...}

``write_report`` reads only the run dir (through harness.analysis), so it
re-renders any past run; the ``run`` command calls it at the end of every run.
"""

from __future__ import annotations

__all__ = ["write_report"]


def __getattr__(name: str):
    # imported on first use: matplotlib and pandas stay out of `check`
    if name == "write_report":
        from harness.report.render import write_report

        return write_report
    raise AttributeError(f"module 'harness.report' has no attribute {name!r}")
