"""`rollout-harness cleanup`: delete what runs left behind on a cluster.

A run deletes its namespace at the end, also on Ctrl-C or an error; a run
killed outright (SIGKILL, a lost CI runner) cannot. Everything a run creates
carries ``app.kubernetes.io/managed-by=rollout-harness``, so this finds the
leftovers by that label: whole namespaces, or — with ``--namespace`` for a
run that used an existing namespace — the Deployments, Services and
PodDisruptionBudgets in it. Nothing without the label is ever touched.
Nodes a killed drain left cordoned carry the annotation
``rollout-harness.io/cordoned-by``: they are uncordoned (the mark goes too).
"""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "cleanup",
        help="delete namespaces/objects left on a cluster by killed runs (by label), uncordon nodes they left cordoned",
        description="Delete what rollout-harness runs left on a cluster, found by the label "
        "app.kubernetes.io/managed-by=rollout-harness. Exit 0 when done, 3 when the cluster "
        "cannot be reached.",
    )
    p.add_argument("--context", help="kubeconfig context (default: the current one)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    p.add_argument("--namespace", help="an existing namespace runs deployed into (kubernetes.namespace); "
                   "delete the labelled objects in it instead of whole namespaces")
    p.add_argument("--run", help="only the run with this id (the rollout-harness.io/run label)")
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.platforms.kubernetes.cleanup import delete_leftovers, find_cordoned, find_leftovers
    from harness.platforms.kubernetes.client import KubeError, load_api

    api = load_api(kubeconfig=args.kubeconfig, context=args.context)
    leftovers = find_leftovers(api, namespace=args.namespace, run_id=args.run)
    try:
        leftovers += find_cordoned(api, run_id=args.run)
    except KubeError as exc:
        if exc.status not in (401, 403):
            raise
        print(f"cannot list nodes ({exc}): nodes a killed drain left cordoned were not checked", file=sys.stderr)
    if not leftovers:
        print(f"nothing left over on context {api.context!r}")
        return 0
    for item in leftovers:
        node = item.resource == "nodes"
        if args.dry_run:
            print(f"would {'uncordon' if node else 'delete'} {item}")
        else:
            print(f"{'uncordoning' if node else 'deleting'} {item}")
    if not args.dry_run:
        failed = delete_leftovers(api, leftovers)
        for item, err in failed:
            print(f"could not delete {item}: {err}", file=sys.stderr)
        if failed:
            return 3
    return 0
