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
# Each command lives in hpo/cli/<name>.py with add_parser(subparsers) and execute(args); its
# one-line summary is here, so `hpo --help` lists every command without importing any of them
# (they import torch, optuna and pandas, seconds of start-up).
COMMANDS = {
    "run": "run or resume the studies of a study file",
    "list": "list the studies in a storage",
    "report": "write a folder of figures and tables for a stored study",
    "dashboard": "open the storage in optuna-dashboard",
    "compare": "compare hand-picked configs with automated studies",
    "export": "save the best trial's model (re-trained from its params and seed)",
    "predict": "predict with a model that hpo export saved",
}


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line with a pointer to --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the command named in ``argv`` is imported (every one when None)."""
    parser = OneLineParser(
        prog="hpo", description="Hyperparameter search for PyTorch training loops: run studies, "
        "then report, compare with hand-picked configs, browse, export.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                       parser_class=OneLineParser)
    chosen = _command_in(argv)
    for name, summary in COMMANDS.items():
        if (chosen in (None, name) and argv is None) or chosen == name:
            importlib.import_module(f"hpo.cli.{name}").add_parser(subparsers)
        else:
            subparsers.add_parser(name, help=summary)
    return parser


def _command_in(argv: Sequence[str] | None) -> str | None:
    """The command ``argv`` names (its first word that is one), or None."""
    if argv is None:
        return None
    return next((word for word in argv if word in COMMANDS), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    # Not list(...): importing the command module hpo.cli.list binds the name `list` here.
    words = [*(sys.argv[1:] if argv is None else argv)]
    args = build_parser(words).parse_args(words)
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

