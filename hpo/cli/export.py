"""``hpo export STUDY --out best.pt``: re-train a study's best trial and save the model."""

from __future__ import annotations

import argparse
from typing import Any

from hpo.cli import COMMANDS
from hpo.cli._args import add_storage_argument


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export", help=COMMANDS["export"],
        description=("Train the best (or --trial) trial of a study again and save its model. "
                     "Trials keep no weights. By default the model saved is the refit: the "
                     "trial's params trained on every row the search read, whose held-out "
                     "test R² `hpo run` printed; --as-trained saves the trial's own model, "
                     "replayed exactly as it trained. Either is checked against the stored R²."))
    parser.add_argument("study", help="a stored study")
    parser.add_argument("--out", required=True, help="model file to write, e.g. best.pt")
    parser.add_argument("--trial", type=int, help="export this trial number instead of the best")
    parser.add_argument("--as-trained", action="store_true",
                        help="save the trial's own model (trained on the train part, stopped "
                             "where it was scored) instead of the refit on every non-test row")
    add_storage_argument(parser)
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    from hpo.results.export import export  # torch and optuna load for the export, not for --help

    extra = export(args.study, args.out, storage=args.storage, trial=args.trial,
                   as_trained=args.as_trained, progress=True)
    print(f"Saved {extra['model']} model of trial {extra['trial']} of {extra['study']!r} to "
          f"{args.out}" + (f" (refit on all {extra['refit_rows']} rows the search read, as "
                           "GridSearchCV(refit=True) does)" if extra["model"] == "refit"
                           else "") + ".")
    print(agreement(extra))
    print(f"Predict with: hpo predict {args.out} "
          + ("--x VALUE" if len(extra["feature_names"]) == 1 else "--csv FILE.csv"))
    return 0


def agreement(extra: dict[str, Any]) -> str:
    """The re-trained and the stored R² on one line, loud when they differ."""
    from hpo.results.export import TOLERANCE
    line = f"{extra['scored_on']}: {extra['retrained_r2']:.6f} re-trained"
    stored = extra.get("stored_r2")
    if stored is None:
        return f"{line} (the study stored no score of this model to check it against)."
    if abs(extra["retrained_r2"] - stored) > TOLERANCE:
        return (f"{line}, {stored:.6f} stored: THEY DIFFER by "
                f"{abs(extra['retrained_r2'] - stored):.2g} (another device, machine or torch?).")
    return f"{line}, {stored:.6f} stored: the same."
