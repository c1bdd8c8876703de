"""What the storage costs next to the training it records, per storage kind.

Runs the same lab study (the lab network, 50 epochs, batch 64, Adam + cosine, no pruning)
through the real runner on each storage, and prints the wall time, the training time the
trials measured themselves, the difference (bookkeeping: the sampler, the storage, one
report per epoch, the trial's attributes), and the cost of one ``trial.report`` alone.

    .venv/bin/python benchmarks/bench_storage.py [--trials 20]

The baseline trains the same params with the same objective and no search; the difference
is the runner's bookkeeping: sampling, the storage, one report per epoch, the attributes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import torch

from hpo import LabData, RunOptions, Study, run
from hpo.data import prepare_folds
from hpo.store.storage import open_storage
from hpo.train.objective import train_and_score
from search_spaces import (
    suggest_architecture,
    suggest_optimizer,
    suggest_scheduler,
    suggest_training,
)


def lab_space(trial: Any) -> dict[str, Any]:
    return {**suggest_architecture(trial, hidden_layers=2, width=20, activation="tanh",
                                   batch_norm=False, dropout=0.0),
            **suggest_optimizer(trial, optimizer="adam", weight_decay=0.0),
            **suggest_training(trial, batch_size=64, epochs=50),
            **suggest_scheduler(trial, families="cosine")}


def time_study(storage: str, trials: int) -> tuple[float, float]:
    """Wall seconds of the whole run, and the seconds the trials spent training."""
    study = Study(name="bench", space=lab_space, data=LabData(), sampler="random",
                  pruner="none", n_trials=trials, seed=0)
    start = time.perf_counter()
    options = RunOptions(storage=storage, progress=False, devices="cpu", workers=1)
    optuna_study = run(study, options)
    wall = time.perf_counter() - start
    return wall, sum(t.user_attrs["seconds"] for t in optuna_study.trials)


def time_without_storage(trials: int) -> float:
    """Wall seconds of the same trials trained by the same objective, with no search at all."""
    study = Study(name="bench", space=lab_space, data=LabData(), seed=0)
    folds = prepare_folds(study.data, test_size=study.test_size, seed=study.seed)
    sampler = optuna.samplers.RandomSampler(seed=0)
    params = [lab_space(optuna.trial.FixedTrial(_draw(sampler, n))) for n in range(trials)]
    start = time.perf_counter()
    for number, trial_params in enumerate(params):
        train_and_score(trial_params, folds, seed=number)
    return time.perf_counter() - start


def _draw(sampler: optuna.samplers.BaseSampler, number: int) -> dict[str, Any]:
    study = optuna.create_study(sampler=sampler, direction="maximize")
    trial = study.ask()
    lab_space(trial)
    return trial.params


def time_report(storage: str, reports: int = 200) -> float:
    """Median seconds of one trial.report (what every epoch of every trial pays)."""
    study = optuna.create_study(storage=open_storage(storage), study_name="report",
                                direction="maximize")
    trial = study.ask()
    samples = []
    for step in range(reports):
        start = time.perf_counter()
        trial.report(0.5, step)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def warm_up_torch() -> None:
    """Pay torch's one-time costs (the first optimizer imports torch._dynamo, about 1.3 s
    here) before timing, so they are not booked as storage overhead."""
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.zeros(2, 1)).sum().backward()
    optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warm_up_torch()
    bare = time_without_storage(args.trials)
    print(f"{args.trials} lab trials x 50 epochs, one worker; the same trials with no search "
          f"and no storage take {bare:.2f} s")
    print(f"{'storage':10} {'wall s':>8} {'overhead s':>11} {'share':>6} {'per trial ms':>13} "
          f"{'report ms':>10}")
    with tempfile.TemporaryDirectory() as folder:
        for kind, name in (("journal", "bench.journal"), ("sqlite", "bench.db")):
            wall, _ = time_study(str(Path(folder) / name), args.trials)
            report = time_report(str(Path(folder) / f"report-{name}"))
            overhead = wall - bare
            print(f"{kind:10} {wall:8.2f} {overhead:11.2f} {overhead / wall:6.1%} "
                  f"{overhead / args.trials * 1000:13.1f} {report * 1000:10.3f}")


if __name__ == "__main__":
    main()
