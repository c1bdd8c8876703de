"""Your own data: copy this file, point CSV_PATH at your CSV, name the columns, run it.

The CSV needs a header row; the feature and target columns must be numeric (other columns
are ignored). Every problem with the file — a missing column, a non-numeric or empty cell,
too few rows — stops the run with one line naming the file, column and row.

As shipped it reads the mtcars copy inside the package, so it runs as is:

    hpo run studies/csv_template.py
    HPO_CSV=my.csv HPO_FEATURES=a,b HPO_TARGET=y hpo run studies/csv_template.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import hpo
from hpo import CsvData, Study
from search_spaces import (
    Choice,
    Int,
    suggest_architecture,
    suggest_optimizer,
    suggest_scheduler,
    suggest_training,
)

CSV_PATH = os.environ.get("HPO_CSV", str(Path(hpo.__file__).parent / "datasets" / "mtcars.csv"))
FEATURES = tuple(os.environ.get("HPO_FEATURES", "wt,hp,disp").split(","))
TARGET = os.environ.get("HPO_TARGET", "mpg")


def space(trial: Any) -> dict[str, Any]:
    """A small MLP for tabular data: few rows call for few, narrow layers."""
    return {
        **suggest_architecture(trial, hidden_layers=Int(0, 2), width=Int(2, 32, log=True),
                               dropout=0.0),
        **suggest_optimizer(trial, optimizer=Choice(["adam", "sgd"])),
        **suggest_training(trial, batch_size=Choice([8, "full"]), epochs=Int(50, 300)),
        **suggest_scheduler(trial, families=("constant", "cosine")),
    }


STUDY = Study(
    name=f"csv-{Path(CSV_PATH).stem}",
    space=space,
    data=CsvData(CSV_PATH, features=FEATURES, target=TARGET),
    standardize=True,  # features on very different scales (weight, horsepower)
    cv_folds=3,        # few rows: one 30% test split would be too noisy to rank trials
    sampler="tpe",
    pruner="median",
    n_trials=30,
    seed=0,
    description=f"{TARGET} ~ {' + '.join(FEATURES)} from {Path(CSV_PATH).name}",
)

if __name__ == "__main__":
    from hpo.cli import main_for

    main_for(__file__)
