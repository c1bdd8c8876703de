"""What the storage costs next to the training it records, per storage kind.

Runs the same lab study (the lab network, 50 epochs, batch 64, Adam + cosine, no pruning)
through the real runner on each storage, and prints the wall time, the training time the
trials measured themselves, the difference (bookkeeping: the sampler, the storage, one
report per epoch, the trial's attributes), and the cost of one ``trial.report`` alone.

    .venv/bin/python benchmarks/bench_storage.py [--trials 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

from hpo import LabData, RunOptions, Study, run
from hpo.storage import open_storage
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
    optuna_study = run(study, RunOptions(storage=storage, progress=False, devices="cpu"))
    wall = time.perf_counter() - start
    return wall, sum(t.user_attrs["seconds"] for t in optuna_study.trials)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"{args.trials} lab trials x 50 epochs, one worker, per storage:")
    print(f"{'storage':10} {'wall s':>8} {'train s':>8} {'overhead':>9} {'share':>6} "
          f"{'report ms':>10}")
    with tempfile.TemporaryDirectory() as folder:
        for kind, name in (("journal", "bench.journal"), ("sqlite", "bench.db")):
            storage = str(Path(folder) / name)
            wall, training = time_study(storage, args.trials)
            report = time_report(str(Path(folder) / f"report-{name}"))
            overhead = wall - training
            print(f"{kind:10} {wall:8.2f} {training:8.2f} {overhead:9.2f} "
                  f"{overhead / wall:6.1%} {report * 1000:10.3f}")


if __name__ == "__main__":
    main()
