"""`make demo`: the seed's claim, measured on this machine with no cluster.

Runs best-practice and no-prestop on the local platform (real replicas of
the sample app, real traffic, a real rolling update), prints where each run
dir is, then compares them side by side with `rollout-harness compare` when
that command is installed. A failing gate on no-prestop is the point of the
demo, so the demo itself exits 0 whenever both runs produced a run dir.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.model.rundir import default_run_dir  # noqa: E402

SCENARIOS = ["best-practice", "no-prestop"]
EXPECT = {"best-practice": "pass (0 failed requests)",
          "no-prestop": "fail (connections refused while endpoints still list terminating pods)",
          "drain-best-practice": "pass (0 failed; the PDB makes the drain evict one pod at a time)",
          "drain-pdb-blocks": "inconclusive, exit 3 (every eviction 429 until the drain times out)"}
ALL = "--all" in sys.argv[1:]  # `make demo ALL=1`: best-practice and every shipped mistake
if ALL:
    SCENARIOS = ["best-practice"] + sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml")
                                           if p.stem != "best-practice")


def harness(*args: str) -> int:
    return subprocess.call([sys.executable, "-m", "harness", *args], cwd=ROOT)


def main() -> int:
    runs: list[tuple[str, Path, int]] = []
    for name in SCENARIOS:
        out = default_run_dir(name, ROOT / "reports")
        print(f"\n=== {name}: expected {EXPECT.get(name, 'fail, with a finding naming the mistake')}", flush=True)
        code = harness("run", str(ROOT / "scenarios" / f"{name}.yaml"), "--platform", "local", "--out", str(out))
        runs.append((name, out, code))
    print("\nrun dirs:")
    for name, out, code in runs:
        report = out / "index.html"
        print(f"  {name:<15} exit {code}  {out}" + (f"  (open {report})" if report.exists() else ""))
    missing = [name for name, out, _ in runs if not (out / "manifest.json").exists()]
    if importlib.util.find_spec("harness.commands.compare") is not None and not missing:
        print("\n=== compare", flush=True)
        compare_dir = ROOT / "reports" / "compare" / runs[0][1].name
        harness("compare", *(str(out) for _, out, _ in runs), "--out", str(compare_dir))
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
