"""``hpo export STUDY --out best.pt``: re-train a study's best trial and save the model."""

from __future__ import annotations

import argparse
from typing import Any

from hpo.cli import COMMANDS
from hpo.cli._args import add_storage_argument


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export", help=COMMANDS["export"],
        description=("Re-train the best (or --trial) trial of a study and save its model. Trials "
                    "keep no weights: the trial is re-trained on the study's folds with its "
                    "stored seed, and its test R² checked against the stored one."))
    parser.add_argument("study", help="a stored study")
    parser.add_argument("--out", required=True, help="model file to write, e.g. best.pt")
    parser.add_argument("--trial", type=int, help="export this trial number instead of the best")
    parser.add_argument("--no-refit", action="store_true",
                        help="refuse a cross-validated study instead of refitting its best "
                             "params on every row it cross-validated (GridSearchCV's refit)")
    add_storage_argument(parser)
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    from hpo.results.export import export  # torch and optuna load for the export, not for --help

    extra = export(args.study, args.out, storage=args.storage, trial=args.trial,
                   refit=not args.no_refit, progress=True)
    if extra.get("refit"):
        print(f"Refit the params of trial {extra['trial']} of {extra['study']!r} (CV R² "
              f"{extra['cv_r2']:.6f}) on all {extra['refit_rows']} rows it was cross-validated "
              f"on, as GridSearchCV(refit=True) does; saved to {args.out}: R² "
              f"{extra['retrained_r2']:.6f} on {extra['scored_on']}.")
    else:
        print(f"Saved trial {extra['trial']} of {extra['study']!r} to {args.out}: "
              f"{extra['scored_on']} {extra['retrained_r2']:.6f} re-trained, "
              f"{extra['test_r2']:.6f} stored.")
    print(f"Predict with: hpo predict {args.out} "
          + ("--x VALUE" if len(extra["feature_names"]) == 1 else "--csv FILE.csv"))
    return 0
