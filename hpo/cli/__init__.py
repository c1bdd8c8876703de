"""The ``hpo`` command line: ``hpo run | list | report | compare | dashboard | export | predict``.

A user's mistake (a bad flag, a bad study file, an unreachable storage) prints one line
saying what was expected and how to fix it, and exits with code 2; no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from hpo.errors import HPOError

EXIT_USER_ERROR = 2
# Each command lives in hpo/cli/<name>.py with add_parser(subparsers) and execute(args).
COMMANDS = ("run", "list", "report", "dashboard", "compare", "export", "predict")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line with a pointer to --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="hpo", description="Hyperparameter search for PyTorch training loops: run studies, "
        "then report, compare with hand-picked configs, browse, export.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                       parser_class=OneLineParser)
    for name in COMMANDS:
        importlib.import_module(f"hpo.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except HPOError as error:
        print(f"hpo: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("hpo: interrupted; every finished trial is kept in the storage, and running "
              "the same command again resumes.", file=sys.stderr)
        return 130


def main_for(study_file: str) -> None:
    """What a study file calls under ``if __name__ == "__main__"``: ``hpo run`` on itself,
    with the same flags, so ``python studies/x.py --n-trials 5`` works like ``hpo run``."""
    sys.exit(main(["run", study_file, *sys.argv[1:]]))

