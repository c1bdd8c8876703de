"""``hpo predict MODEL.pt --x 3.0 [--x 4.5 …]`` or ``--csv new.csv``: predict with an
exported model (standardization saved at export is applied)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from hpo.cli import COMMANDS
from hpo.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict", help=COMMANDS["predict"],
        description="Predict with a model that hpo export saved: --x for a one-feature model, "
                    "--csv FILE for any (the standardization saved at export is applied).")
    parser.add_argument("model", help="a model file written by hpo export")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--x", type=float, action="append", metavar="VALUE",
                        help="an input value (one-feature models); repeat for more")
    source.add_argument("--csv", metavar="FILE", help="a CSV with the model's feature "
                        "columns; printed back with a prediction column")
    parser.add_argument("--out", help="with --csv: write the CSV here instead of stdout")
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    # torch, numpy and pandas load for the prediction, not for --help.
    from hpo.results.export import predict, predict_csv

    if args.csv is None:
        if args.out:
            raise ConfigError(f"--out writes a CSV and goes with --csv, but got --x; drop "
                              f"--out {args.out} or pass --csv FILE.")
        name = _check_one_feature(args.model)
        predictions = predict(args.model, args.x)
        print(_side_by_side(name, args.x, predictions))
        return 0
    frame = predict_csv(args.model, args.csv)
    frame.to_csv(args.out if args.out else sys.stdout, index=False)
    return 0


def _side_by_side(name: str, inputs: list[float], predictions: np.ndarray) -> str:
    """Each input next to its prediction, one row each, like the CSV that --csv writes."""
    import pandas as pd

    frame = pd.DataFrame({name: [_number(v) for v in inputs],
                          "prediction": [_number(v) for v in predictions]})
    return frame.to_string(index=False)


def _number(value: float) -> str:
    import numpy as np

    return np.format_float_positional(np.float32(value), unique=True, trim="0")


def _check_one_feature(path: str) -> str:
    from hpo.train.checkpoints import load_model

    names = load_model(path)[2].get("feature_names") or []
    if len(names) != 1:
        raise ConfigError(f"--x gives one feature per row, but {path} takes {len(names)} "
                          f"({', '.join(names)}); pass --csv FILE with those columns.")
    return str(names[0])
