"""The command line: parses arguments and calls the library; nothing else.

Each subcommand lives in harness/commands/<name>.py and exposes
``register(subparsers)``; its handler returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from harness import __version__
from harness.errors import EXIT_BAD_INPUT, HarnessError

#: Subcommands in the order --help lists them.
COMMANDS = ["run", "load", "validate", "check", "report", "gate", "compare", "cleanup"]

DESCRIPTION = """\
Know, not hope, that a rolling update drops no user requests.

rollout-harness fires open-loop HTTP traffic at a service while a platform
rolls it out, records every request and every pod lifecycle step on one clock,
attributes each failure to a pod and a phase of its life, explains the cause
and the fix, and exits by a gate CI can use (0 pass, 1 fail, 2 bad input,
3 inconclusive).

  rollout-harness run scenarios/best-practice.yaml     # a rollout under load, no cluster needed
  rollout-harness load http://127.0.0.1:8080/ --rate 2000 --duration 10 --out reports/load
  rollout-harness report reports/best-practice/<run-id>
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # exit 2 with a hint, as argparse does, but say where to look
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rollout-harness", description=DESCRIPTION,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"harness.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"harness.commands.{name}":
                continue  # not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args) or 0)
    except HarnessError as exc:
        print(f"rollout-harness: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("rollout-harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
