"""`rollout-harness check MANIFESTS...`: the risks a Deployment's spec shows,
at once and without traffic (the static face of the diagnosis rules)."""

from __future__ import annotations

import argparse
import sys

EPILOG = """\
examples:
  rollout-harness check k8s/deployment.yaml k8s/pdb.yaml
  helm template my-release ./chart | rollout-harness check -
  rollout-harness check k8s/*.yaml --format sarif > check.sarif

Exit code: 0 no HIGH risk, 1 a HIGH risk is present, 2 bad manifest.
Each risk names its file and line, what goes wrong in a rollout and the fix;
the output ends with the run that would confirm it under load.
"""


def register(sub) -> None:
    p = sub.add_parser("check", help="risks in Kubernetes manifests, without traffic (exit 1 on a HIGH risk)",
                       description="Read Deployment, Service and PodDisruptionBudget manifests and report the "
                       "rollout risks their spec shows. See docs/manifests.md.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="MANIFEST", help="manifest files ('-' reads stdin)")
    p.add_argument("--format", choices=["text", "json", "junit", "sarif"], default="text")
    p.add_argument("--deployment", metavar="NAME", help="check only this Deployment")
    p.add_argument("--container", metavar="NAME", help="the container under test (default: the first)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.spec.checks import HIGH, check_workload
    from harness.errors import EXIT_FAIL
    from harness.model.k8syaml import ManifestError, load_documents
    from harness.model.workload import from_documents
    from harness.report.risks import FORMATS

    docs = load_documents(args.files)
    names = [args.deployment] if args.deployment else [d.name for d in docs if d.kind == "Deployment"]
    if not names:
        kinds = ", ".join(f"{d.kind}/{d.name}" for d in docs) or "no objects"
        raise ManifestError(f"{', '.join(args.files)}: no Deployment to check (found {kinds})")
    risks = []
    for name in names:
        risks.extend(check_workload(from_documents(docs, deployment=name, container=args.container)))
    sys.stdout.write(FORMATS[args.format](risks, list(args.files), names))
    return EXIT_FAIL if any(r.severity == HIGH for r in risks) else 0
