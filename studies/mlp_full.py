"""Everything varies: depth, width, activation, batch norm, dropout, optimizer, batch size,
epochs, and the learning-rate schedule family itself, on the lab's data.

TPE with Hyperband pruning: a wide space wastes most of its budget on poor trials unless
they are stopped early.

    hpo run studies/mlp_full.py --n-trials 100 --workers 2
"""

from __future__ import annotations

from typing import Any

from hpo import LabData, Study
from search_spaces import (
    FAMILIES,
    suggest_architecture,
    suggest_optimizer,
    suggest_scheduler,
    suggest_training,
)


def space(trial: Any) -> dict[str, Any]:
    """Every knob with its default range; the schedule family is a categorical choice."""
    return {
        **suggest_architecture(trial),
        **suggest_optimizer(trial),
        **suggest_training(trial),
        **suggest_scheduler(trial, families=FAMILIES),
    }


STUDY = Study(
    name="mlp-full",
    space=space,
    data=LabData(n=1000, seed=0),
    sampler="tpe",
    pruner="hyperband",
    n_trials=60,
    seed=0,
    description="every architecture, optimizer, batch and schedule knob on the lab data",
)

if __name__ == "__main__":
    from hpo.cli import main_for

    main_for(__file__)
