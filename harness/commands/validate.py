"""`rollout-harness validate FILE...`: check scenario files without running them."""

from __future__ import annotations

import argparse
import sys

from harness.errors import EXIT_BAD_INPUT, ScenarioError


def register(sub) -> None:
    p = sub.add_parser(
        "validate",
        help="check scenario files (exit 2 naming each bad field)",
        description="Validate scenario files. Every problem names the file, the field path and what "
        "is allowed; exit code 2 if any file is invalid. See docs/scenarios.md.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario YAML files")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                   help="override a field, e.g. --set traffic.rate=1000 (repeatable)")
    p.add_argument("--print", dest="print_", action="store_true", help="print the scenario as loaded, defaults filled in")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import yaml

    from harness.analysis.drain_rules import drain_risks
    from harness.model.scenario import load_scenario

    bad = 0
    for f in args.files:
        try:
            sc = load_scenario(f, args.overrides)
        except ScenarioError as exc:
            print(exc, file=sys.stderr)
            bad += 1
            continue
        print(f"{f}: ok ({sc.name}: {sc.deployment.replicas} replicas, {sc.traffic.rate:g} req/s)")
        for r in drain_risks(sc):
            print(f"  risk ({r['rule']}): {r['risk']}; fix: {r['fix']}")
        if args.print_:
            print(yaml.safe_dump(sc.dump(), sort_keys=False))
    return EXIT_BAD_INPUT if bad else 0
