"""`rollout-harness validate FILE...`: check scenario files without running them."""

from __future__ import annotations

import argparse
import sys

from harness.errors import EXIT_BAD_INPUT, BadInput


def register(sub) -> None:
    p = sub.add_parser(
        "validate",
        help="check scenario files (exit 2 naming each bad field)",
        description="Validate scenario files. Every problem names the file, the field path and what "
        "is allowed; exit code 2 if any file is invalid. See docs/scenarios.md.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario YAML files")
    p.add_argument("--manifests", action="append", default=[], metavar="FILE",
                   help="take the workload from Kubernetes manifests (repeatable; '-' reads stdin, e.g. "
                   "`helm template ... | rollout-harness run s.yaml --manifests -`); see docs/manifests.md")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                   help="override a field, e.g. --set traffic.rate=1000 (repeatable)")
    p.add_argument("--print", dest="print_", action="store_true", help="print the scenario as loaded, defaults filled in")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import yaml

    from harness.model.scenario import load_scenario
    from harness.model.workload import workload_of
    from harness.report.risks import risk_lines
    from harness.spec.checks import check_scenario

    manifests = getattr(args, "manifests", None) or []  # callers may build args without it
    stdin = sys.stdin.read() if "-" in manifests else None  # read once, shared by every file
    bad = 0
    for f in args.files:
        try:
            sc = load_scenario(f, args.overrides, manifests=manifests or None, stdin_text=stdin)
        except BadInput as exc:
            print(exc, file=sys.stderr)
            bad += 1
            continue
        print(f"{f}: ok ({sc.name}: {sc.deployment.replicas} replicas, {sc.traffic.rate:g} req/s)")
        wl = workload_of(sc)
        if wl.from_manifests:
            print(f"  workload: Deployment {wl.deployment.name}, container {wl.container} from {wl.origin}")
            for field in wl.unmodelled:
                print(f"  not played on the local platform: {field}")
        for r in check_scenario(sc):  # the risks `rollout-harness check` computes, same ids and wording
            print("\n".join("  " + line for line in risk_lines(r)))
        if args.print_:
            print(yaml.safe_dump(sc.dump(), sort_keys=False))
    return EXIT_BAD_INPUT if bad else 0
