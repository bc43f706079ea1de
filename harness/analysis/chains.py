"""Termination chains: for every pod that was deleted, the steps of its end
in the order Kubernetes runs them — deletion, removal from the endpoints
the traffic path uses, preStop start and end, the stop signal, the app's
own shutdown, exit or SIGKILL — with each step's time after the deletion
and the traffic the pod still received after it.

The race a rollout loses is visible here: a pod that still gets new
connections after its stop signal, or requests in flight at its SIGKILL.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.podlife import PodLife

#: (key, label) in the order of a pod's end
STEPS = (
    ("deletion", "deletion requested"),
    ("endpoint_removed", "removed from endpoints"),
    ("ingress_removed", "removed from the ingress"),
    ("prestop_started", "preStop started"),
    ("prestop_finished", "preStop finished"),
    ("stop_signal", "stop signal sent"),
    ("shutdown_started", "app shutdown started"),
    ("listener_closed", "listener closed"),
    ("drained", "in-flight requests drained"),
    ("sigkill", "SIGKILL sent"),
    ("exited", "process exited"),
)


def pod_traffic(req: pd.DataFrame, att: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """pod -> (sent times, failed?, new connection?) of every request it
    received: answered ones by their pod, failed ones by attribution."""
    ok_rows = req["pod"].notna().to_numpy()
    ans = req.loc[ok_rows, ["pod", "sent_ns", "scheduled_ns", "conn_reused"]]
    t_ans = np.where(ans["sent_ns"].to_numpy() >= 0, ans["sent_ns"].to_numpy(), ans["scheduled_ns"].to_numpy())
    # failures that carried a pod header are already in `ans`
    extra = att.loc[(att["how"] != "answered") & att["pod"].notna(), ["pod", "t_ns", "reused"]]
    frame = pd.DataFrame({
        "pod": np.concatenate([ans["pod"].to_numpy(dtype=object), extra["pod"].to_numpy(dtype=object)]),
        "t": np.concatenate([t_ans, extra["t_ns"].to_numpy()]),
        "failed": np.concatenate([np.isin(req.index[ok_rows], att.index), np.ones(len(extra), bool)]),
        "new": np.concatenate([~ans["conn_reused"].to_numpy(dtype=bool), ~extra["reused"].to_numpy(dtype=bool)]),
    })
    out = {}
    for pod, grp in frame.sort_values("t", kind="stable").groupby("pod", sort=False):
        out[str(pod)] = (grp["t"].to_numpy(), grp["failed"].to_numpy(), grp["new"].to_numpy())
    return out


def _after(times: np.ndarray, mask: np.ndarray | None, t: int) -> int:
    i = np.searchsorted(times, t, side="left")
    return int(len(times) - i) if mask is None else int(mask[i:].sum())


def termination_chains(pods: dict[str, PodLife],
                       traffic: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                       spec: Any = None) -> list[dict[str, Any]]:
    """One chain per deleted (or signalled) pod. ``spec`` (a RunSpec) adds
    the preStop's kind and its duration in the spec next to the observed one."""
    chains = []
    for p in pods.values():
        if p.deletion is None and p.stop_signal is None:
            continue
        t0 = p.deletion if p.deletion is not None else p.stop_signal
        times, failed, new = traffic.get(p.name, (np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, bool)))
        steps = []
        for key, label in STEPS:
            t = getattr(p, key)
            if t is None:
                continue
            steps.append({
                "step": key, "label": label, "t_s": round(t / 1e9, 3),
                "after_deletion_s": round((t - t0) / 1e9, 3),
                "requests_after": _after(times, None, t),
                "new_connections_after": _after(times, new, t),
                "failures_after": _after(times, failed, t),
            })
        steps.sort(key=lambda s: s["t_s"])
        end = p.end if p.end is not None else p.sigkill
        sig = p.stop_signal

        def secs(a, b):
            return None if a is None or b is None else round((b - a) / 1e9, 3)

        chains.append({
            "pod": p.name,
            "deletion_s": round(t0 / 1e9, 3),
            "steps": steps,
            "endpoint_lag_s": secs(p.deletion, p.endpoint_removed),
            "ingress_lag_s": secs(p.deletion, p.ingress_removed),
            "prestop_s": secs(p.prestop_started, p.prestop_finished),
            "prestop_end_inferred_from": p.prestop_end_source,
            "prestop_spec": spec.prestop.text if spec is not None and spec.prestop is not None else None,
            "ended": p.end is not None or p.deleted is not None,
            "deletion_to_signal_s": secs(p.deletion, sig),
            "signal_to_exit_s": secs(sig, end),
            "deletion_to_exit_s": secs(t0, end),
            "signal_before_endpoint_removal_s": (
                secs(sig, p.endpoint_removed) if sig is not None and p.endpoint_removed is not None
                and p.endpoint_removed > sig else 0.0 if sig is not None else None),
            "killed": p.sigkill is not None,
            "exit_code": p.exit_code,
            "requests_total": int(len(times)),
            "failures_total": int(failed.sum()),
        })
    chains.sort(key=lambda c: c["deletion_s"])
    return chains
