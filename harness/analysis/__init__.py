"""Analysis of a run dir: from request records and lifecycle events to a
timeline, attributed failures, termination chains, findings and a verdict.

Reads only the run dir (harness.model), so any run can be re-analysed:

    from harness.analysis import analyse
    a = analyse("reports/no-prestop/20261126T050000-1234")
    a.summary["verdict"]      # {"status": "fail", "exit_code": 1, ...}
    a.findings[0]["fix"]      # "Add lifecycle.preStop sleep >= 2 s ..."
    write_summary(run_dir)    # the same, written to summary.json (its one writer)
"""

from harness.analysis.analyse import Analysis, analyse, write_summary

__all__ = ["Analysis", "analyse", "write_summary"]
