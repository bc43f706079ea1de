"""The history of past rollouts: one SQLite row per rollout with its
headline figures, keyed by scenario, platform and parameters, so a run can
be judged against what the same configuration did before and a report can
show the trend.

It is an index over run dirs, never a second copy of their data: each row
names its run dir, and holds only the few figures the gate and the trend
chart need.

    record(db, scenario_dump, "local", [headline(summary)], series_id=None)
    rows = history(db, key_of(scenario_dump, "local"))
    limit = p99_limit([r["failed_requests"] for r in rows], floor=0)

``gate --baseline history`` judges a run against the P99 of its history,
never below a floor, as OpenShift's disruption monitor does with three
weeks of CI history (there the floor is 1 s of disruption).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import sqlite3
from pathlib import Path
from typing import Any

DEFAULT_HISTORY = Path("reports") / "history.sqlite"
#: scenario fields that name or describe it without changing what runs
_NOT_PARAMETERS = ("name", "description")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rollouts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_at TEXT NOT NULL,
    scenario TEXT NOT NULL,
    platform TEXT NOT NULL,
    params_key TEXT NOT NULL,
    params TEXT NOT NULL,
    series_id TEXT,
    run_dir TEXT,
    status TEXT NOT NULL,
    failed_requests INTEGER NOT NULL,
    window_requests INTEGER NOT NULL,
    disruption_seconds REAL,
    p99_ms REAL,
    top_finding TEXT
);
CREATE INDEX IF NOT EXISTS rollouts_key ON rollouts (scenario, platform, params_key, id);
"""
_COLUMNS = ("id", "recorded_at", "scenario", "platform", "params_key", "series_id", "run_dir", "status",
            "failed_requests", "window_requests", "disruption_seconds", "p99_ms", "top_finding")


def key_of(scenario_dump: dict[str, Any], platform: str) -> tuple[str, str, str]:
    """(scenario, platform, params_key): the parameters are the scenario as
    run, minus its name and description, hashed in a canonical form."""
    params = {k: v for k, v in scenario_dump.items() if k not in _NOT_PARAMETERS}
    canon = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return str(scenario_dump.get("name", "")), platform, hashlib.sha256(canon.encode()).hexdigest()[:16]


def _connect(db: str | Path) -> sqlite3.Connection:
    p = Path(db)
    p.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(p, timeout=30)
    con.executescript(_SCHEMA)
    return con


def record(db: str | Path, scenario_dump: dict[str, Any], platform: str, rollouts: list[dict[str, Any]],
           *, series_id: str | None = None) -> int:
    """Append one row per rollout headline (aggregate.headline); returns the
    number of rows written. Rollouts that could not see are kept with their
    status, and left out of the baseline by ``history``."""
    scenario, plat, key = key_of(scenario_dump, platform)
    params = json.dumps({k: v for k, v in scenario_dump.items() if k not in _NOT_PARAMETERS},
                        sort_keys=True, default=str)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    rows = [(now, scenario, plat, key, params, series_id, _abs(r.get("run_dir")), r.get("status", "inconclusive"),
             int(r.get("failed_requests") or 0), int(r.get("window_requests") or 0), r.get("disruption_seconds"),
             r.get("p99_ms"), r.get("top_finding")) for r in rollouts]
    con = _connect(db)
    try:
        with con:
            con.executemany("INSERT INTO rollouts (recorded_at, scenario, platform, params_key, params, series_id, "
                            "run_dir, status, failed_requests, window_requests, disruption_seconds, p99_ms, "
                            "top_finding) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    finally:
        con.close()
    return len(rows)


def history(db: str | Path, key: tuple[str, str, str], *, conclusive_only: bool = True,
            exclude_run_dirs: set[str] | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Past rollouts of one configuration, oldest first."""
    if not Path(db).is_file():
        return []
    con = _connect(db)
    try:
        sql = (f"SELECT {', '.join(_COLUMNS)} FROM rollouts WHERE scenario = ? AND platform = ? AND params_key = ?"
               + (" AND status IN ('pass', 'fail')" if conclusive_only else "") + " ORDER BY id")
        rows = [dict(zip(_COLUMNS, r)) for r in con.execute(sql, key)]
    finally:
        con.close()
    if exclude_run_dirs:
        skip = {_abs(d) for d in exclude_run_dirs}
        rows = [r for r in rows if r["run_dir"] not in skip]
    return rows[-limit:] if limit else rows


def _abs(run_dir: str | None) -> str | None:
    return str(Path(run_dir).resolve()) if run_dir else None


def judge(rollouts: list[dict[str, Any]], past: list[dict[str, Any]], *, floor: float,
          min_history: int) -> dict[str, Any]:
    """``gate --baseline history``: each rollout's failed requests against
    the P99 of the configuration's history (never below ``floor``)."""
    from harness.errors import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_PASS

    if len(past) < min_history:
        return {"status": "inconclusive", "exit_code": EXIT_INCONCLUSIVE, "limit": None,
                "headline": f"INCONCLUSIVE: the history holds {len(past)} conclusive rollout(s) of this "
                f"configuration; the baseline needs at least {min_history}"}
    limit = p99_limit([float(r["failed_requests"]) for r in past], floor)
    blind = [r for r in rollouts if r.get("status") not in ("pass", "fail")]
    over = [r for r in rollouts if r.get("status") in ("pass", "fail") and r["failed_requests"] > limit]
    base = f"history P99 over {len(past)} rollouts, floor {floor:g}: limit {limit:g} failed requests per rollout"
    if over:
        worst = max(r["failed_requests"] for r in over)
        return {"status": "fail", "exit_code": EXIT_FAIL, "limit": limit,
                "headline": f"FAIL: {len(over)} of {len(rollouts)} rollout(s) over the history's limit "
                f"(worst {worst}; {base})"}
    if blind or not rollouts:
        return {"status": "inconclusive", "exit_code": EXIT_INCONCLUSIVE, "limit": limit,
                "headline": f"INCONCLUSIVE: {len(blind)} rollout(s) could not see ({base})"}
    return {"status": "pass", "exit_code": EXIT_PASS, "limit": limit,
            "headline": f"PASS: every rollout within the history ({base})"}


def p99(values: list[float]) -> float | None:
    """Nearest-rank 99th percentile."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, math.ceil(0.99 * len(v)) - 1)]


def p99_limit(values: list[float], floor: float) -> float | None:
    """The history's P99, never below ``floor`` (None without history)."""
    q = p99(values)
    return None if q is None else max(q, floor)


def trend_chart(rows: list[dict[str, Any]], out: str | Path, *, title: str = "") -> bytes | None:
    """Failed requests per rollout over the history (one point per rollout,
    failures red), with the P99 line; the PNG's bytes, or None without rows."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = list(range(1, len(rows) + 1))
    y = [r["failed_requests"] for r in rows]
    colors = ["#c62828" if r["status"] == "fail" else "#2e7d32" if r["status"] == "pass" else "#9e9e9e"
              for r in rows]
    fig, ax = plt.subplots(figsize=(8, 2.6), dpi=100)
    ax.plot(x, y, color="#90a4ae", linewidth=1, zorder=1)
    ax.scatter(x, y, c=colors, s=18, zorder=2)
    q = p99([float(v) for v in y])
    if q is not None:
        ax.axhline(q, color="#ef6c00", linestyle="--", linewidth=1, label=f"P99 {q:g}")
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_xlabel("rollout (oldest first)")
    ax.set_ylabel("failed requests")
    ax.set_title(title or "history: failed requests per rollout", fontsize=10)
    ax.set_ylim(bottom=0, top=max(1, max(y)) * 1.15)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.read_bytes()
