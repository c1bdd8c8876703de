"""The course's grid search: linear regression of mpg on wt (mtcars), lr × epochs.

As the course did with skorch's GridSearchCV: SGD on a linear model, every combination of
learning rate and epochs (10, 200, 500), scored by R² with 3-fold cross-validation, then
the best score and params. Least squares gives slope -5.3445, intercept 37.2851 (R² 0.7528
on all rows); too large a learning rate diverges (the course saw it at 0.1), which the
study records as a failed trial and goes on. Like GridSearchCV, it cross-validates every
row (``test_size=0``: 32 rows leave little to hold out) and ``hpo export`` refits the best
params on all 32 rows.

    hpo run studies/cars_grid.py
    hpo run studies/cars_grid.py --workers 2        # each grid point still runs once
    hpo export cars-grid --out cars.pt              # refit on all rows (best_estimator_)
"""

from __future__ import annotations

from typing import Any

from hpo import Mtcars, Study
from search_spaces import (
    Choice,
    suggest_architecture,
    suggest_optimizer,
    suggest_scheduler,
    suggest_training,
)

LEARNING_RATES = [0.001, 0.005, 0.01, 0.02, 0.05, 0.1]
EPOCHS = [10, 200, 500]


def space(trial: Any) -> dict[str, Any]:
    """Linear regression (no hidden layer), full-batch SGD, constant learning rate."""
    return {
        **suggest_architecture(trial, hidden_layers=0, width=1, activation="tanh",
                               batch_norm=False, dropout=0.0),
        **suggest_optimizer(trial, optimizer="sgd", weight_decay=0.0, momentum=0.0,
                            nesterov=False),
        **suggest_training(trial, batch_size="full", epochs=Choice(EPOCHS)),
        **suggest_scheduler(trial, families="constant",
                            overrides={"constant": {"lr": Choice(LEARNING_RATES)}}),
    }


STUDY = Study(
    name="cars-grid",
    space=space,
    data=Mtcars(features=("wt",), target="mpg"),
    cv_folds=3,
    test_size=0,  # cross-validate every row, as GridSearchCV(cv=3) did in the course
    sampler="grid",
    pruner="none",
    grid={"lr": LEARNING_RATES, "epochs": EPOCHS},
    seed=0,
    description="course grid search: mpg ~ wt, SGD lr x epochs, 3-fold CV R²",
)

if __name__ == "__main__":
    from hpo.cli import main_for

    main_for(__file__)
