"""``hpo export STUDY --out best.pt``: re-train a study's best trial and save the model."""

from __future__ import annotations

import argparse
from typing import Any

from hpo.cli import COMMANDS
from hpo.cli._args import add_storage_argument
from hpo.results.export import export


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export", help=COMMANDS["export"],
        description=("Re-train the best (or --trial) trial of a study and save its model. Trials "
                    "keep no weights: the trial is re-trained on the study's folds with its "
                    "stored seed, and its test R² checked against the stored one."))
    parser.add_argument("study", help="a stored study")
    parser.add_argument("--out", required=True, help="model file to write, e.g. best.pt")
    parser.add_argument("--trial", type=int, help="export this trial number instead of the best")
    add_storage_argument(parser)
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    extra = export(args.study, args.out, storage=args.storage, trial=args.trial, progress=True)
    print(f"Saved trial {extra['trial']} of {extra['study']!r} to {args.out}: test R² "
          f"{extra['retrained_r2']:.6f} re-trained, {extra['test_r2']:.6f} stored.")
    print(f"Predict with: hpo predict {args.out} "
          + ("--x VALUE" if len(extra["feature_names"]) == 1 else "--csv FILE.csv"))
    return 0
