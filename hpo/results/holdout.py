"""The end of a search: the chosen configurations scored once on the held-out test part.

During the search trials are scored on validation (or by cross-validation) and the test
part is never read. Here a configuration is trained on every non-test row (train and
validation together, as ``GridSearchCV(refit=True)`` refits) with each given seed, and
scored on the test part: one R² per seed. The last epoch is scored: picking the best epoch
would choose on the test part again.

In the lab's setting (``validation_size = 0``) trials were scored on the test part itself;
then the test score is the trial's own (trained on the same rows) and says so.

Example:
    >>> scores = heldout_scores(trial_params(trial), record, seeds=[0, 1, 2])   # doctest: +SKIP
    >>> stored = score_best_on_test(load_study("lr-cosine"))                 # doctest: +SKIP
    >>> stored["trial"], stored["test_r2"]                                   # doctest: +SKIP
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
import torch

from hpo.errors import ConfigError
from hpo.store.attrs import read_test_score, trial_params, write_test_score
from hpo.store.record import final_fold_from_record, score_label, stored_record
from hpo.store.summary import best_trial
from hpo.train.objective import Job, evaluate_many
from hpo.train.rules import training_seeds


def holds_test_out(record: Mapping[str, Any]) -> bool:
    """Whether trials were scored on something else than a test part held out till the end."""
    return score_label(dict(record)) != "test R²" and bool(record.get("test_size"))


def heldout_scores(params: Mapping[str, Any], record: Mapping[str, Any],
                   seeds: Sequence[int], on_run: Callable[[], None] = lambda: None
                   ) -> list[float]:
    """The params trained on every non-test row, one test R² per seed (nan: diverged).

    ``on_run`` is called after each seed, for a progress display."""
    return heldout_scores_many([params], record, seeds, on_run)[0]


def heldout_scores_many(params: Sequence[Mapping[str, Any]], record: Mapping[str, Any],
                        seeds: Sequence[int], on_run: Callable[[], None] = lambda: None
                        ) -> list[list[float]]:
    """`heldout_scores` of every params dict, all trainings (params × seeds) trained as one
    population where they can share it."""
    fold = final_fold_from_record(dict(record))
    if fold is None:
        raise ConfigError("The study cross-validated every row and held no test part out "
                          "(test_size=0); there is nothing to score on. Give it a test_size.")
    # The lab's setting reproduces the trial exactly; a refit scores its last epoch.
    score = "final" if holds_test_out(record) else str(record.get("score", "final"))
    jobs = [[Job(one, seed) for seed in seeds] for one in params]
    evaluate_many([job for row in jobs for job in row], [fold], score=score)
    for _ in range(len(params) * len(seeds)):
        on_run()
    return [[math.nan if job.value is None else job.value for job in row] for row in jobs]


def score_best_on_test(optuna_study: optuna.Study) -> dict[str, Any] | None:
    """Score the best trial once on the held-out test part and keep it as a study attr.

    Trained with the trial's own seeds; reused when the best trial has not changed. None
    when the study holds no test part out, or scored its trials on it.
    """
    record = stored_record(optuna_study)
    if not holds_test_out(record):
        return None
    best = best_trial(optuna_study)
    kept = read_test_score(optuna_study)
    if kept and kept.get("trial") == best.number:
        return dict(kept)
    seeds = training_seeds(int(best.user_attrs.get("seed", 0)), int(record.get("seeds", 1)))
    scores = heldout_scores(trial_params(best), record, seeds)
    result = {"trial": best.number, "test_r2": statistics.fmean(scores), "scores": scores,
              "seeds": seeds, "chosen_on": score_label(record),
              "threads": torch.get_num_threads()}  # export's refit repeats it with them
    write_test_score(optuna_study, result)
    return result
