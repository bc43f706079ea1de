"""Diagnosis rules for node drains and PodDisruptionBudgets (DESIGN.md: "a
disruption is a plan of steps"; the drain's steps are lifecycle events:
drain_started, node_cordoned, eviction_requested, eviction_refused (429),
evicted, drain_complete).

    single-replica     the only pod was evicted: the service had no endpoint
                       until its replacement was ready
    all-on-one-node    every replica ran on the drained node
    no-pdb             no PodDisruptionBudget: the drain evicted several pods
                       at once and the rest could not carry the load
    pdb-blocks-drain   the PDB allowed no disruption, every eviction got 429
                       and the drain never finished: the run is inconclusive
                       (the verdict says so), never a pass
    rollout-below-pdb  a rolling update took the ready pods below the PDB's
                       desiredHealthy: a fact, not a failure — a PDB limits
                       evictions, not a Deployment's own rollout

The first three claim the failures between the first eviction and the
replacements' return to the endpoints (plus RECOVERY_NS for queues to
drain); they run after the per-pod rules, so a missing preStop during a
drain is still named as such.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.analysis.findings import RECOVERY_NS, Context, by_outcome, claim, finding, outcome_text, secs
from harness.analysis.rules import capacity_dips
from harness.model.events import EventKind
from harness.platforms.local.eviction import pdb_status


def _events(ctx: Context, kind: EventKind) -> list[dict[str, Any]]:
    return [e for e in ctx.events if e["kind"] == str(kind)]


def _drain_facts(ctx: Context) -> dict[str, Any] | None:
    if ctx.scenario.disruption.type not in ("drain", "evict"):
        return None
    started = _events(ctx, EventKind.DRAIN_STARTED)
    evicted = _events(ctx, EventKind.EVICTED)
    refused = _events(ctx, EventKind.EVICTION_REFUSED)
    done = _events(ctx, EventKind.DRAIN_COMPLETE)
    first = started[0] if started else None
    return {
        "nodes": (first or {}).get("detail", {}).get("nodes", []),
        "pods_per_node": (first or {}).get("detail", {}).get("pods_per_node", {}),
        "started": first["t_ns"] if first else None,
        "evicted": evicted,
        "refused": refused,
        "result": done[-1]["detail"] if done else None,
        "ended": done[-1]["t_ns"] if done else None,
    }


def _span(ctx: Context, facts: dict[str, Any]) -> tuple[int, int] | None:
    """From the first eviction until every pod created after it was in the
    endpoints (or the window's end), plus RECOVERY_NS."""
    if not facts["evicted"]:
        return None
    lo = min(e["t_ns"] for e in facts["evicted"])
    hi_marks = [p.endpoint_added for p in ctx.pods.values()
                if p.created is not None and p.created >= lo and p.endpoint_added is not None]
    end = ctx.window[1] if ctx.window else lo
    hi = max(hi_marks) if hi_marks else end
    if any(p.created is not None and p.created >= lo and p.endpoint_added is None for p in ctx.pods.values()):
        hi = end
    return lo, hi + RECOVERY_NS


def _claim_span(ctx: Context, span: tuple[int, int] | None):
    if span is None or not ctx.free.any():
        return None
    t = ctx.att["t_ns"].to_numpy()
    mask = ctx.free & (t >= span[0]) & (t <= span[1])
    return claim(ctx, mask) if mask.any() else None


def _lowest_endpoints(ctx: Context, span: tuple[int, int] | None) -> int | None:
    dips = capacity_dips(ctx.pods, ctx.scenario.deployment.replicas, span)
    return min((m for _, _, m in dips), default=None)


def rule_single_replica(ctx: Context) -> dict[str, Any] | None:
    facts = _drain_facts(ctx)
    if facts is None or ctx.scenario.deployment.replicas != 1 or not facts["evicted"]:
        return None
    span = _span(ctx, facts)
    got = _claim_span(ctx, span)
    pod = facts["evicted"][0]["pod"]
    outage = secs(span[1] - RECOVERY_NS - span[0]) if span else None
    impact = f"{len(got)} requests failed ({outcome_text(by_outcome(got))})" if got is not None else "no request failed"
    return finding(
        "single-replica", "Single replica: the drain evicted the only pod",
        f"The Deployment runs 1 replica, so evicting {pod} left the service with no endpoint until its "
        f"replacement was ready (about {outage:g} s): {impact}."
        + (" The PodDisruptionBudget allowed it: with 1 replica, maxUnavailable 1 means desiredHealthy 0."
           if ctx.scenario.deployment.pod_disruption_budget is not None else ""),
        "Run replicas >= 2, spread over nodes (topologySpreadConstraints on kubernetes.io/hostname), with a "
        "PodDisruptionBudget maxUnavailable: 1, so a drain always leaves a pod serving. (A PDB minAvailable: 1 "
        "on a single replica does not help: it blocks the drain forever instead.)",
        "high" if got is not None else "medium", got, evicted_pod=pod, outage_s=outage,
    )


def rule_all_on_one_node(ctx: Context) -> dict[str, Any] | None:
    facts = _drain_facts(ctx)
    replicas = ctx.scenario.deployment.replicas
    if facts is None or replicas < 2 or not facts["evicted"]:
        return None
    per = {k: v for k, v in facts["pods_per_node"].items() if v}
    if len(per) != 1 or next(iter(per)) not in facts["nodes"]:
        return None
    node = next(iter(per))
    span = _span(ctx, facts)
    got = _claim_span(ctx, span)
    impact = f"{len(got)} requests failed ({outcome_text(by_outcome(got))})" if got is not None else "no request failed"
    return finding(
        "all-on-one-node", f"All {replicas} replicas ran on the drained node {node}",
        f"Every pod of the Deployment was on {node}, so draining it took them all; {impact}.",
        "Spread the pods over nodes: topologySpreadConstraints [{maxSkew: 1, topologyKey: kubernetes.io/hostname, "
        "whenUnsatisfiable: ScheduleAnyway}] (or a podAntiAffinity on kubernetes.io/hostname), and a "
        "PodDisruptionBudget maxUnavailable: 1 so the drain waits for each replacement.",
        "high" if got is not None else "medium", got, node=node, pods_per_node=facts["pods_per_node"],
    )


def rule_no_pdb(ctx: Context) -> dict[str, Any] | None:
    facts = _drain_facts(ctx)
    if facts is None or ctx.scenario.deployment.pod_disruption_budget is not None or len(facts["evicted"]) < 2:
        return None
    times = sorted(e["t_ns"] for e in facts["evicted"])
    burst = 1 + max(int(np.searchsorted(times, t + 1_000_000_000, side="right")) - i - 1
                    for i, t in enumerate(times))
    span = _span(ctx, facts)
    got = _claim_span(ctx, span)
    lowest = _lowest_endpoints(ctx, span)
    replicas = ctx.scenario.deployment.replicas
    if got is None and burst < 2:
        return None
    t = ctx.att["t_ns"].to_numpy()
    in_span = int(((t >= span[0]) & (t <= span[1])).sum()) if span else 0
    impact = (f"{len(got)} requests failed ({outcome_text(by_outcome(got))})" if got is not None
              else f"{in_span} requests failed meanwhile, counted under the finding above" if in_span
              else "no request failed this time")
    dip = f"; the traffic path was down to {lowest} of {replicas} endpoints" if lowest is not None else ""
    return finding(
        "no-pdb", f"No PodDisruptionBudget: the drain evicted {burst} pods at once",
        f"Without a PodDisruptionBudget every eviction succeeds at once: the drain of "
        f"{', '.join(facts['nodes'])} evicted {len(times)} pods, {burst} within 1 s{dip}; {impact}.",
        "Add a PodDisruptionBudget for the app with maxUnavailable: 1 (or a percentage of replicas that the "
        "remaining pods can carry): the Eviction API then answers 429 to the next eviction until the evicted "
        "pod's replacement is Ready, and the drain waits.",
        "high" if got is not None else "medium", got, evicted=len(times), evicted_within_1s=burst,
        lowest_endpoints=lowest, replicas=replicas,
    )


def rule_pdb_blocks_drain(ctx: Context) -> dict[str, Any] | None:
    facts = _drain_facts(ctx)
    if facts is None or not facts["refused"]:
        return None
    result = facts["result"] or {}
    if result.get("complete", False):
        return None  # refusals that the drain waited out are the PDB working
    last = facts["refused"][-1]["detail"].get("pdb") or {}
    pdb = ctx.scenario.deployment.pod_disruption_budget
    replicas = ctx.scenario.deployment.replicas
    spec = ("no PodDisruptionBudget in the scenario" if pdb is None else
            f"minAvailable {pdb.min_available}" if pdb.min_available is not None else f"maxUnavailable {pdb.max_unavailable}")
    cur, want = last.get("current_healthy"), last.get("desired_healthy")
    blocked = sorted({e["pod"] for e in facts["refused"]} - {e["pod"] for e in facts["evicted"]})
    dis = ctx.scenario.disruption
    timeout_s = dis.evict.timeout_seconds if dis.type == "evict" else dis.drain.timeout_seconds
    pending = {e["pod"]: e["detail"].get("reason", "") for e in _events(ctx, EventKind.FAILED_SCHEDULING)
               if facts["started"] is not None and e["t_ns"] >= facts["started"]}
    if pending:
        pod, reason = next(iter(pending.items()))
        why = (f"the replacement of an evicted pod stayed Pending ({pod}: {reason}), so the healthy count "
               f"never came back to desiredHealthy {want} and disruptionsAllowed stayed 0")
        fix = ("Give replacements somewhere to go: more nodes, or a spread constraint that tolerates a "
               "cordoned node (whenUnsatisfiable: ScheduleAnyway, or nodeTaintsPolicy: Honor so the cordoned "
               "node is no domain); the PDB then lets the drain go on one pod at a time.")
    elif cur is not None and want is not None and cur < want:
        why = (f"only {cur} pods were healthy of the {want} the budget needs: not-ready pods are held by "
               "unhealthyPodEvictionPolicy IfHealthyBudget (the default)")
        fix = ("Make the pods healthy, or set unhealthyPodEvictionPolicy: AlwaysAllow so not-ready pods can be "
               "evicted; keep maxUnavailable >= 1.")
    elif cur is None or want is None:
        why = "the PodDisruptionBudget allowed no disruption (its status was not readable here)"
        fix = (f"Set maxUnavailable: 1 (or minAvailable below replicas, {replicas}) so one pod at a time may go; "
               "a budget that allows no disruption blocks every drain and node upgrade for ever.")
    else:
        why = f"desiredHealthy {want} equals the {cur} healthy pods, so disruptionsAllowed is 0"
        fix = (f"Set maxUnavailable: 1 (or minAvailable below replicas, {replicas}) so one pod at a time may go; "
               "a budget that allows no disruption blocks every drain and node upgrade for ever.")
    return finding(
        "pdb-blocks-drain", "The PodDisruptionBudget blocked the drain: it never finished",
        f"With {spec} and {replicas} replicas, {why}. The Eviction API refused {len(facts['refused'])} "
        f"eviction(s) with 429 (no Retry-After; retried every 5 s as kubectl drain does) until the drain "
        f"timed out after {timeout_s:g} s; pods never evicted: "
        f"{', '.join(blocked) or '(none)'}. The run could not observe a drain, so it is inconclusive.",
        fix, "high", None, evictions_refused=len(facts["refused"]), pods_blocked=blocked, pdb_status=last,
        drain=result, pending_replacements=pending,
    )


def rule_rollout_below_pdb(ctx: Context) -> dict[str, Any] | None:
    pdb = ctx.scenario.deployment.pod_disruption_budget
    if pdb is None or ctx.scenario.disruption.type in ("drain", "evict"):
        return None
    replicas = ctx.scenario.deployment.replicas
    desired = pdb_status(pdb, replicas, []).desired_healthy
    dips = [d for d in capacity_dips(ctx.pods, replicas, ctx.window) if d[2] < desired]
    if not dips:
        return None
    lowest = min(m for _, _, m in dips)
    seconds = round(sum(b - a for a, b, _ in dips) / 1e9, 3)
    return finding(
        "rollout-below-pdb", f"The rollout went below the PodDisruptionBudget: {lowest} of {desired} pods",
        f"The PodDisruptionBudget asks for {desired} healthy pods, but the rolling update left only {lowest} in "
        f"the endpoints for {seconds:g} s. This is expected Kubernetes behaviour: a PDB limits evictions (node "
        "drains), not a Deployment's own rollout.",
        f"To keep {desired} pods serving during a rollout, bound the rollout itself: strategy.rollingUpdate "
        f"maxUnavailable <= {max(0, replicas - desired)} (0 with maxSurge 1 keeps all {replicas}).",
        "low", None, desired_healthy=desired, lowest_endpoints=lowest, seconds_below=seconds,
    )


DRAIN_RULES = (rule_single_replica, rule_all_on_one_node, rule_no_pdb, rule_pdb_blocks_drain,
               rule_rollout_below_pdb)

# The static face of these rules (single-replica, no-pdb, pdb-blocks-drain in a spec, before any run)
# lives with the other checks in harness.spec.checks, which `check` and `validate` both print.
