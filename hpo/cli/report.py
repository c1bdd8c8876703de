"""``hpo report STUDY``: write a folder with index.md, PNG figures and trials.csv for a study."""

from __future__ import annotations

import argparse
from typing import Any

from hpo.cli import COMMANDS
from hpo.cli._args import add_storage_argument


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report", help=COMMANDS["report"],
        description="Write index.md (trial counts, leaderboard, best params), PNG figures and "
                    "trials.csv for one stored study.")
    parser.add_argument("study", help="the study's name in the storage (see `hpo list`)")
    add_storage_argument(parser)
    parser.add_argument("--out", help="folder to write (default: hpo-report-STUDY in the "
                                      "working folder); files already there are replaced")
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    from hpo.results.report import make_report  # matplotlib and torch load only for this command

    report = make_report(args.study, storage=args.storage, out=args.out, progress=True)
    print(f"Report of {args.study!r}: {report.index} ({len(report.figures)} figures)")
    for file, reason in report.skipped.items():
        print(f"  skipped {file}: {reason}")
    return 0
