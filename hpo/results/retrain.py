"""Training a stored trial again as it ran, from the storage alone (trials keep no weights).

A trial records its params, seed, thread count and the padded layout of the population it
trained in (`hpo.train.rules.started_record`); `replay` trains it again in the same engine
with all of them, which repeats its arithmetic to the bit on the same machine and torch.
Used by ``hpo report`` (the best model's prediction), ``hpo export --as-trained`` and tests
that hold every stored trial to its score.
"""

from __future__ import annotations

from typing import Any

from optuna.trial import FrozenTrial
from torch import nn

from hpo.data import Fold
from hpo.errors import ConfigError
from hpo.results.tables import trial_history
from hpo.store.attrs import trial_attr, trial_params
from hpo.store.record import folds_from_record, score_label
from hpo.train.batched import Member
from hpo.train.models import ModelSpec
from hpo.train.objective import Job, evaluate_many
from hpo.train.progress import Progress
from hpo.train.reporter import MemoryReporter
from hpo.train.threads import torch_threads


def scored_epoch(trial: FrozenTrial, record: dict[str, Any]) -> int:
    """The epoch whose weights the trial was scored on: the best one with score="best"."""
    history = trial_history(trial)
    if record.get("score") == "best" and "epoch" in history and "test_r2" in history:
        return int(history["epoch"].to_numpy()[history["test_r2"].to_numpy().argmax()])
    return int(trial_params(trial)["epochs"])


def replay(trial: FrozenTrial, record: dict[str, Any], *, models: bool = False,
           progress: bool = False) -> Job:
    """Train a stored trial again as it was trained: its folds, seeds, layout and thread
    count. ``job.value`` is then its score again (None: diverged). With ``models``, only its
    first seed trains, stopped at the epoch it was scored on, and keeps its weights
    (``job.members[0][fold]``, `Member.model`)."""
    if "seed" not in trial.user_attrs:
        raise ConfigError(f"Trial {trial.number} stored no seed, expected one written by hpo; "
                          "re-run the study with hpo to retrain it.")
    folds = folds_from_record(record)
    stop = scored_epoch(trial, record) if models and len(folds) == 1 else None
    bar = Progress(stop or int(trial_params(trial)["epochs"]), f"re-training trial "
                   f"{trial.number}", unit="epoch", enabled=progress and len(folds) == 1)
    job = Job(trial_params(trial), int(trial.user_attrs["seed"]),
              _BarReporter(bar, score_label(record)),
              seeds=1 if models else int(record.get("seeds") or 1),
              layout=trial_attr(trial, "layout"), stop_after=stop)
    try:
        with torch_threads(trial.user_attrs.get("threads")):
            evaluate_many([job], folds, score=str(record.get("score", "final")),
                          keep_weights=models)
    finally:
        bar.close()
    return job


def retrain_trial(trial: FrozenTrial, record: dict[str, Any], *, progress: bool = False
                  ) -> tuple[nn.Module, ModelSpec, Member, Fold]:
    """The model a stored trial scored (its first seed's; a cross-validated trial's on fold
    1), trained again by `replay`: the model, its spec, its `Member` (rows, how it stopped)
    and the fold it trained on. With ``progress``, shows the epochs trained."""
    job = replay(trial, record, models=True, progress=progress)
    member = job.members[0][0]
    assert member.spec is not None
    return member.model(), member.spec, member, folds_from_record(record)[0]


class _BarReporter(MemoryReporter):
    """Keeps what the replay reports, and shows its epochs on a progress bar."""

    def __init__(self, bar: Progress, label: str) -> None:
        super().__init__()
        self.bar, self.label = bar, label

    def report(self, epoch: int, metrics: Any) -> None:
        super().report(epoch, metrics)
        self.bar.update(epoch, f"{self.label} {metrics.get('test_r2', float('nan')):.4f}")
