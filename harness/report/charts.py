"""The report's charts as PNGs (matplotlib, Agg backend: no display).

    rate.png       requests per second by outcome, run phases shaded
    latency.png    p50 / p99 latency of successful requests per bin
    swimlanes.png  one lane per pod: its phases (starting, ready,
                   terminating, draining) and the failures that hit it

Each function takes analysed data, never the run dir, and returns the PNG
bytes (the HTML inlines them) after writing the file beside the report.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from harness.analysis.podlife import PodLife  # noqa: E402
from harness.analysis.timeline import Timeline  # noqa: E402
from harness.model.outcome import OUTCOMES, Outcome  # noqa: E402

DPI = 100
WIDTH_IN = 12
#: one colour per outcome, ok a calm green, failures warm, the engine's drops grey
OUTCOME_COLORS = {
    Outcome.OK: "#4c9a5b", Outcome.HTTP_502: "#e377c2", Outcome.HTTP_503: "#c51b7d", Outcome.HTTP_504: "#8e0152",
    Outcome.HTTP_5XX: "#f1b6da", Outcome.HTTP_4XX: "#bcbd22", Outcome.REFUSED: "#d62728", Outcome.RESET: "#ff7f0e",
    Outcome.CLOSED: "#9467bd", Outcome.CONNECT_TIMEOUT: "#8c564b", Outcome.READ_TIMEOUT: "#17becf",
    Outcome.DROPPED: "#7f7f7f", Outcome.OTHER: "#000000",
}
PHASE_COLORS = {"baseline": "#f0f0f0", "disruption": "#fde0c5", "settle": "#e0ecf8"}
POD_PHASE_COLORS = {"starting": "#c6dbef", "ready": "#74c476", "terminating": "#fd8d3c", "draining": "#fdd0a2"}
MAX_POINTS = 20_000


def _png(fig, path: Path | None) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    data = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def _shade_phases(ax, phase_bounds: dict[str, tuple[int, int]], label: bool = True) -> None:
    for name, (lo, hi) in phase_bounds.items():
        ax.axvspan(lo / 1e9, hi / 1e9, color=PHASE_COLORS.get(name, "#ffffff"), zorder=0, lw=0)
        if label:
            ax.text((lo + hi) / 2e9, 1.0, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                    fontsize=9, color="#555555")


def _empty(fig, ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#777777")
    ax.set_xticks([]), ax.set_yticks([])


def rate_chart(tl: Timeline, phase_bounds: dict[str, tuple[int, int]], path: Path | None = None) -> bytes:
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.2))
    if tl.n_bins == 0:
        _empty(fig, ax, "no requests recorded")
        return _png(fig, path)
    x = tl.bin_starts_s()
    per_s = tl.counts / (tl.bin_ns / 1e9)
    present = [i for i in range(len(OUTCOMES)) if tl.counts[:, i].any()]
    ok_i = OUTCOMES.index(Outcome.OK)
    order = ([ok_i] if ok_i in present else []) + [i for i in present if i != ok_i]
    _shade_phases(ax, phase_bounds)
    ax.stackplot(x, *[per_s[:, i] for i in order], step="post", labels=[OUTCOMES[i].value for i in order],
                 colors=[OUTCOME_COLORS[OUTCOMES[i]] for i in order], lw=0)
    for lo, hi, _n in tl.intervals:
        ax.axvspan(lo / 1e9, hi / 1e9, ymin=0.97, ymax=1.0, color="#d62728", lw=0)
    ax.set_ylabel("requests / s")
    ax.set_xlabel("run time (s)")
    ax.set_xlim(x[0], x[-1] + tl.bin_ns / 1e9)
    ax.legend(loc="lower left", fontsize=8, ncol=min(len(order), 7), framealpha=0.9)
    ax.set_title("Request rate by outcome (red ticks on top: bins with failures)", fontsize=10, loc="left", pad=16)
    return _png(fig, path)


def latency_chart(tl: Timeline, phase_bounds: dict[str, tuple[int, int]], path: Path | None = None) -> bytes:
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.8))
    if tl.n_bins == 0 or np.all(np.isnan(tl.p50_ms)):
        _empty(fig, ax, "no successful requests to time")
        return _png(fig, path)
    x = tl.bin_starts_s()
    _shade_phases(ax, phase_bounds, label=False)
    ax.plot(x, tl.p99_ms, drawstyle="steps-post", color="#d62728", lw=1, label="p99")
    ax.plot(x, tl.p50_ms, drawstyle="steps-post", color="#1f77b4", lw=1, label="p50")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}" if str(v)[0] in "25" else ""))
    ax.set_ylabel("latency (ms, log)")
    ax.set_xlabel("run time (s)")
    ax.set_xlim(x[0], x[-1] + tl.bin_ns / 1e9)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Latency of successful requests from their scheduled time, per bin", fontsize=10, loc="left", pad=16)
    return _png(fig, path)


def _lane_segments(p: PodLife, t_end: int) -> list[tuple[str, int, int]]:
    """(pod phase, start, end) bars for one lane."""
    segs = []
    start = p.created if p.created is not None else p.started
    serving = p.serving_from
    stop = p.end if p.end is not None else (p.sigkill if p.sigkill is not None else t_end)
    deletion = p.deletion if p.deletion is not None else stop
    if start is None:
        start = serving if serving is not None else (p.endpoint_added or deletion)
    if start is None:
        return segs
    ready_at = serving if serving is not None else deletion
    if ready_at > start:
        segs.append(("starting", start, min(ready_at, deletion)))
    if deletion > ready_at:
        segs.append(("ready", ready_at, deletion))
    if p.deletion is not None:
        removed = p.endpoint_removed if p.endpoint_removed is not None else stop
        if removed > deletion:
            segs.append(("terminating", deletion, min(removed, max(stop, removed))))
        if stop > removed:
            segs.append(("draining", removed, stop))
    return segs


def swimlanes_chart(pods: dict[str, PodLife], failures: tuple[np.ndarray, np.ndarray, np.ndarray],
                    phase_bounds: dict[str, tuple[int, int]], t_range: tuple[int, int],
                    path: Path | None = None) -> bytes:
    """``failures``: (pod, t_ns, outcome code) arrays of the attributed failures."""
    names = list(pods)
    height = max(2.2, 0.42 * len(names) + 1.3)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, height))
    if not names:
        _empty(fig, ax, "no pod lifecycle events recorded")
        return _png(fig, path)
    _shade_phases(ax, phase_bounds)
    lane = {n: i for i, n in enumerate(names)}
    for n, p in pods.items():
        y = lane[n]
        for phase, lo, hi in _lane_segments(p, t_range[1]):
            ax.barh(y, (hi - lo) / 1e9, left=lo / 1e9, height=0.5, color=POD_PHASE_COLORS[phase], lw=0)
        marks = [(p.stop_signal, "v", "stop signal"), (p.sigkill, "X", "SIGKILL"), (p.end, "|", "exit")]
        for t, m, _label in marks:
            if t is not None:
                ax.plot(t / 1e9, y + 0.38, marker=m, color="#333333", ms=6, mew=1.5)
    f_pod, f_t, f_code = failures
    if len(f_pod) > MAX_POINTS:  # a sample keeps the picture and the chart fast
        pick = np.random.default_rng(0).choice(len(f_pod), MAX_POINTS, replace=False)
        f_pod, f_t, f_code = f_pod[pick], f_t[pick], f_code[pick]
    lanes = np.array([lane.get(p, -1) if p is not None else -1 for p in f_pod], dtype=np.int64)
    keep = lanes >= 0
    arr = np.column_stack([lanes[keep], np.asarray(f_t, dtype=np.int64)[keep],
                           np.asarray(f_code, dtype=np.int64)[keep]]) if keep.any() else np.zeros((0, 3), np.int64)
    if len(arr):
        jitter = (np.random.default_rng(1).random(len(arr)) - 0.5) * 0.4
        for code in np.unique(arr[:, 2]):
            sel = arr[:, 2] == code
            ax.scatter(arr[sel, 1] / 1e9, arr[sel, 0] + jitter[sel], s=9, marker="o",
                       color=OUTCOME_COLORS[OUTCOMES[code]], edgecolors="black", linewidths=0.3, zorder=5,
                       label=OUTCOMES[code].value)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_ylim(len(names) - 0.4, -0.8)
    ax.set_xlim(t_range[0] / 1e9, t_range[1] / 1e9)
    ax.set_xlabel("run time (s)   ▼ stop signal   ✕ SIGKILL   | exit")
    handles = [Patch(color=c, label=f"pod {k}") for k, c in POD_PHASE_COLORS.items()]
    h2, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + h2, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)
    ax.set_title("Pods: phases and the failures that hit them", fontsize=10, loc="left", pad=16)
    return _png(fig, path)


def compare_chart(rows: list[dict[str, Any]], path: Path | None = None) -> bytes:
    """Side by side per run: failed requests by outcome (stacked bars),
    disruption seconds and p99 during the rollout."""
    fig, axes = plt.subplots(1, 3, figsize=(WIDTH_IN, 0.5 * max(4, len(rows)) + 1.5),
                             gridspec_kw={"width_ratios": [2, 1, 1]})
    labels = [r["label"] for r in rows]
    y = np.arange(len(rows))
    ax = axes[0]
    left = np.zeros(len(rows))
    outcomes = [o for o in OUTCOMES if o not in (Outcome.OK,) and any(r["outcomes"].get(o.value) for r in rows)]
    for o in outcomes:
        vals = np.array([r["outcomes"].get(o.value, 0) for r in rows], dtype=float)
        ax.barh(y, vals, left=left, color=OUTCOME_COLORS[o], label=o.value)
        left += vals
    for i, v in enumerate(left):
        ax.text(v, i, f" {int(v)}", va="center", fontsize=8)
    ax.set_xlim(0, max(1.0, float(left.max()) if len(left) else 1.0) * 1.15)
    ax.set_yticks(y, labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_title("failed requests in the rollout, by outcome", fontsize=10, loc="left", pad=16)
    if outcomes:
        ax.legend(fontsize=7, loc="lower right")
    for ax, key, title in ((axes[1], "disruption_seconds", "disruption seconds"),
                           (axes[2], "p99_ms", "p99 latency in the rollout (ms)")):
        vals = np.array([r.get(key) or 0 for r in rows], dtype=float)
        ax.barh(y, vals, color="#6b8fb3")
        for i, v in enumerate(vals):
            ax.text(v, i, f" {v:.1f}", va="center", fontsize=8)
        ax.set_xlim(0, max(1.0, float(vals.max()) if len(vals) else 1.0) * 1.2)
        ax.set_yticks(y, [""] * len(rows))
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10, loc="left", pad=16)
    fig.tight_layout()
    return _png(fig, path)
