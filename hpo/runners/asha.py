"""``--pruner asha`` on the Ray runner: Ray's own ASHAScheduler, asked about every epoch.

The Ray runner's driver judges each reported epoch with an Optuna pruner; this one hands
the epoch (``time_attr``) and the test R² to a ``ray.tune.schedulers.ASHAScheduler`` and
prunes when it says STOP, so a stopped trial is PRUNED at that epoch in the storage. On a
resumed study the scheduler's rungs are rebuilt from the trials already finished.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

from hpo.train.reporter import PRUNING_METRIC

# Rungs at 3, 9, 27, 81... epochs, the same warm-up as the Optuna pruners (hpo.study.algorithms);
# max_t is far past any study's epochs, so a trial that reaches its last epoch completes.
GRACE_EPOCHS = 3
REDUCTION_FACTOR = 3
_MAX_EPOCHS = 10_000


class AshaPruner(BasePruner):
    """Asynchronous successive halving as Ray Tune's ASHAScheduler decides it."""

    def __init__(self) -> None:
        from ray.tune.schedulers import ASHAScheduler

        self._scheduler = ASHAScheduler(time_attr="epoch", metric=PRUNING_METRIC, mode="max",
                                        grace_period=GRACE_EPOCHS,
                                        reduction_factor=REDUCTION_FACTOR, max_t=_MAX_EPOCHS)
        self._seen: set[int] = set()

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        if not self._seen:
            self._replay_finished(study)
        step = trial.last_step
        if step is None:
            return False
        return self._judge(trial.number, step, trial.intermediate_values[step])

    def _judge(self, number: int, epoch: int, value: float) -> bool:
        handle = SimpleNamespace(trial_id=str(number))
        if number not in self._seen:
            self._seen.add(number)
            self._scheduler.on_trial_add(None, handle)  # type: ignore[arg-type]
        result: dict[str, Any] = {"epoch": epoch, PRUNING_METRIC: value}
        return bool(self._scheduler.on_trial_result(None, handle, result) == "STOP")  # type: ignore[arg-type]

    def _replay_finished(self, study: optuna.Study) -> None:
        self._seen.add(-1)  # replayed once, even when there is nothing to replay
        states = (TrialState.COMPLETE, TrialState.PRUNED)
        for frozen in study.get_trials(deepcopy=False, states=states):
            for epoch, value in sorted(frozen.intermediate_values.items()):
                self._judge(frozen.number, epoch, value)
