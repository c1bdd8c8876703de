"""``hpo list``: every study in a storage, its trial counts by state and best R²."""

from __future__ import annotations

import argparse
from typing import Any

from hpo.cli import COMMANDS
from hpo.cli._args import WIDTH, add_storage_argument
from hpo.store.storage import resolve_storage, shown

DESCRIPTION = (
    "List every study in a storage: its trial counts by state, its best score and what it was "
    "scored on (validation, CV or test R²), and the held-out test R² scored after the search.")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("list", help=COMMANDS["list"],
                                   description=DESCRIPTION)
    add_storage_argument(parser)
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    import pandas as pd  # optuna and pandas load for the listing, not for --help

    from hpo.results.tables import study_table

    table = study_table(args.storage)
    if table.empty:
        print(f"No studies in {shown(resolve_storage(args.storage))}.")
        return 0
    with pd.option_context("display.width", WIDTH, "display.float_format", "{:.4f}".format):
        print(table.to_string(index=False))
    return 0
