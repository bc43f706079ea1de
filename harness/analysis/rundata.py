"""Load one run dir into memory for analysis: the manifest (with the scenario
as it was run), the request records, the lifecycle events and the run's
phase boundaries.

The analysis reads only the run dir, so any run can be re-analysed later. A
missing or unreadable run dir or manifest is the user's input being wrong
(``BadInput``, exit 2); a crashed run with a torn last record batch is data,
and is loaded with ``records_complete = False``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import BadInput, ScenarioError
from harness.model.events import EventDict, EventKind, read_events
from harness.model.outcome import OUTCOMES
from harness.model.requests import outcome_codes, read_requests_table
from harness.model.rundir import MANIFEST_FILE
from harness.model.scenario import Scenario, scenario_from_dict
from harness.model.stats import DROPPED_CODE, OK_CODE, SERVICE_FAILURE_CODES  # noqa: F401 (re-exported)

#: Run phases in order; requests are labelled by their scheduled time.
PHASES = ("baseline", "disruption", "settle")
#: Requests outside every phase (before the baseline or after the end).
OUTSIDE = "outside"



@dataclasses.dataclass
class RunData:
    run_dir: Path
    manifest: dict[str, Any]
    scenario: Scenario
    #: request records sorted by seq; extra columns: ``code`` (int8 outcome
    #: index), ``phase`` (categorical of PHASES + OUTSIDE)
    requests: pd.DataFrame
    events: list[EventDict]
    #: False when a request file ended in a torn batch (crash mid-write)
    records_complete: bool
    #: phase name -> [start_ns, end_ns) on the run clock
    phase_bounds: dict[str, tuple[int, int]]
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.manifest.get("status") or "unknown")

    def window(self) -> tuple[int, int] | None:
        """The rollout window (disruption + settle): what the verdict judges."""
        d = self.phase_bounds.get("disruption")
        if d is None:
            return None
        s = self.phase_bounds.get("settle")
        return (d[0], s[1] if s else d[1])


def _read_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / MANIFEST_FILE
    if not path.is_file():
        raise BadInput(f"{path}: no run manifest here; pass a run dir written by "
                       "'rollout-harness run' (reports/<scenario>/<run-id>/)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path}: cannot read the run manifest ({exc}); re-run the scenario") from exc
    if not isinstance(data, dict):
        raise BadInput(f"{path}: the run manifest must be a JSON object")
    return data


def _scenario(manifest: dict[str, Any], path: Path, notes: list[str]) -> Scenario:
    raw = manifest.get("scenario")
    if raw is None:
        notes.append("the manifest holds no scenario; the default gate was used")
        return Scenario(name=str(manifest.get("name") or "unnamed"))
    try:
        return scenario_from_dict(raw, source=f"{path} (key 'scenario')")
    except ScenarioError as exc:
        raise BadInput(str(exc)) from exc


def phase_bounds_from_events(events: list[EventDict], end_hint_ns: int) -> dict[str, tuple[int, int]]:
    """[start, end) of each run phase from the ``phase`` events.

    A phase ends where the next one starts, or at the ``end`` event; a run
    that crashed mid-phase ends it at ``end_hint_ns`` (its last record).
    """
    starts: dict[str, int] = {}
    for ev in events:
        if ev.get("kind") == EventKind.PHASE:
            name = str((ev.get("detail") or {}).get("phase", ""))
            starts.setdefault(name, int(ev["t_ns"]))
    order = [p for p in (*PHASES, "end") if p in starts]
    bounds: dict[str, tuple[int, int]] = {}
    for i, name in enumerate(order):
        if name == "end":
            break
        nxt = starts[order[i + 1]] if i + 1 < len(order) else max(end_hint_ns, starts[name])
        bounds[name] = (starts[name], nxt)
    return bounds


def _label_phases(sched: np.ndarray, bounds: dict[str, tuple[int, int]]) -> pd.Categorical:
    names = [*PHASES, OUTSIDE]
    codes = np.full(len(sched), len(PHASES), dtype=np.int8)
    for i, name in enumerate(PHASES):
        if name in bounds:
            lo, hi = bounds[name]
            codes[(sched >= lo) & (sched < hi)] = i
    return pd.Categorical.from_codes(codes, categories=names)


def load_run(run_dir: str | Path) -> RunData:
    """Read a run dir; raises BadInput when it is not one."""
    path = Path(run_dir)
    if not path.is_dir():
        raise BadInput(f"{path}: not a directory; pass a run dir (reports/<scenario>/<run-id>/)")
    manifest = _read_manifest(path)
    notes: list[str] = []
    scenario = _scenario(manifest, path / MANIFEST_FILE, notes)
    try:
        table, complete = read_requests_table(path)
    except OSError as exc:
        raise BadInput(f"{path / 'requests'}: cannot read the request records ({exc})") from exc
    if not complete:
        notes.append("a request file ended in a torn batch (the run stopped mid-write); "
                     "the records before it were analysed")
    df = table.drop_columns(["outcome"]).to_pandas()
    df["code"] = outcome_codes(table)
    df["outcome"] = pd.Categorical.from_codes(df["code"].to_numpy(), categories=[o.value for o in OUTCOMES])
    if len(df) and not df["seq"].is_monotonic_increasing:
        df = df.sort_values("seq", kind="stable").reset_index(drop=True)
    events = read_events(path)
    last = int(df["ended_ns"].max()) if len(df) else 0
    if events:
        last = max(last, int(events[-1]["t_ns"]))
    bounds = phase_bounds_from_events(events, last + 1)
    if not bounds:
        notes.append("no run phases were recorded; the whole run is judged as the rollout")
    df["phase"] = _label_phases(df["scheduled_ns"].to_numpy(), bounds)
    return RunData(run_dir=path, manifest=manifest, scenario=scenario, requests=df, events=events,
                   records_complete=complete, phase_bounds=bounds, notes=notes)
