"""The lab's homework, automated: the best hyperparameters for each learning-rate schedule.

The lab's data (1,000 points, 0.7/0.3 split) and network (1→20→20→1, tanh, Adam, batch 64,
50 epochs); one study per schedule family (exponential, step drop, cosine annealing),
each searching the learning rate and the schedule's own parameters with TPE, pruning
trials whose validation R² falls behind the median of earlier trials at the same epoch.
Trials train on 560 rows and are scored on a validation part (20% of the 700 training
rows); the 300 test rows are read only at the end, by `hpo run` (the best trial) and by
`hpo compare` (the verdict).

    hpo run studies/lr_schedules.py                       # all three families
    hpo run studies/lr_schedules.py --study-name lr-cosine --n-trials 60
    python studies/lr_schedules.py --sampler random       # same thing, same flags

Set SEARCH_MORE = True to also search batch size, batch norm and epochs.
"""

from __future__ import annotations

from typing import Any

from hpo import LabData, Study
from search_spaces import (
    Choice,
    Int,
    suggest_architecture,
    suggest_optimizer,
    suggest_scheduler,
    suggest_training,
)

FAMILIES = ("exponential", "step", "cosine")
# False: only the learning rate and the schedule vary, as in the homework.
SEARCH_MORE = False


def homework_space(family: str) -> Any:
    """The define-by-run space of one family's study: the lab network, a searched schedule."""

    def space(trial: Any) -> dict[str, Any]:
        return {
            **suggest_architecture(
                trial, hidden_layers=2, width=20, activation="tanh", dropout=0.0,
                batch_norm=Choice([False, True]) if SEARCH_MORE else False),
            **suggest_optimizer(trial, optimizer="adam", weight_decay=0.0),
            **suggest_training(
                trial,
                batch_size=Choice([16, 32, 64, 128]) if SEARCH_MORE else 64,
                epochs=Int(10, 80) if SEARCH_MORE else 50),
            **suggest_scheduler(trial, families=family),
        }

    return space


STUDIES = [
    Study(
        name=f"lr-{family}",
        space=homework_space(family),
        data=LabData(n=1000, seed=0),
        test_size=0.3,
        validation_size=0.2,  # 0 scores trials on the test part, as the lab itself did
        sampler="tpe",
        pruner="median",
        n_trials=30,
        seed=0,
        description=f"lab homework: best lr and {family} schedule for the 1-20-20-1 tanh net",
    )
    for family in FAMILIES
]

if __name__ == "__main__":
    from hpo.cli import main_for

    main_for(__file__)
