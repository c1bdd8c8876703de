"""The homework study on both runners, same budget: what Ray's bookkeeping costs per trial.

Runs one family of ``studies/lr_schedules.py`` (TPE, median pruning, the lab network, 50
epochs) with the Optuna runner, then with the Ray runner, each into a fresh journal file,
and prints per runner: wall time, trials per second, best test R², and the bookkeeping per
trial: the time the trial slots spent not training, ``(wall x slots - training) / trials``,
where training is the sum of the seconds each trial measured itself (the last epoch's
``seconds`` for a pruned trial), and the median over trials of the time from the trial's
start to its end in the storage minus its training (the steady cost, start-up excluded).
Ray's start-up (a local Ray for the run) is timed apart: a cluster serves many studies.

    .venv/bin/python benchmarks/bench_ray.py [--family cosine] [--trials 30] [--workers 2]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import torch

from hpo import RunOptions, run
from hpo.runners.ray_cluster import connect
from hpo.store.attrs import trial_history_rows
from hpo.study.file import load_studies

# Loaded as `hpo run` loads it, so its space functions reach the Optuna runner's workers.
HOMEWORK = Path(__file__).resolve().parents[1] / "studies" / "lr_schedules.py"


def measure(runner: str, family: str, trials: int, workers: int, folder: Path) -> dict[str, float]:
    study = next(s for s in load_studies(str(HOMEWORK)) if s.name == f"lr-{family}")
    study = study.replace(n_trials=trials)
    options = RunOptions(storage=str(folder / f"{runner}.journal"), workers=workers,
                         devices="cpu", progress=False, runner=runner)
    start = time.perf_counter()
    finished = run(study, options).trials
    wall = time.perf_counter() - start
    training = sum(_training_seconds(t) for t in finished)
    values = [t.value for t in finished if t.value is not None]
    return {"wall": wall, "trials/s": len(finished) / wall, "best": max(values, default=math.nan),
            "training": training, "per_trial": (wall * workers - training) / len(finished),
            "epochs": sum(int(t.user_attrs.get("epochs_run") or 0) for t in finished),
            "trials": len(finished), "median": statistics.median(
                _stored_seconds(t) - _training_seconds(t) for t in finished)}


def _stored_seconds(trial: optuna.trial.FrozenTrial) -> float:
    assert trial.datetime_start is not None and trial.datetime_complete is not None
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def _training_seconds(trial: optuna.trial.FrozenTrial) -> float:
    """What the trial measured itself; a pruned trial records it only per epoch."""
    history = trial_history_rows(trial) or [{}]
    return float(trial.user_attrs.get("seconds") or history[-1].get("seconds") or 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="cosine", choices=("exponential", "step", "cosine"))
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    print(f"lr-{args.family}: {args.trials} trials, {args.workers} trial slots per runner, "
          f"{os.cpu_count()} CPU cores")
    with tempfile.TemporaryDirectory() as folder:
        rows = {"optuna": measure("optuna", args.family, args.trials, args.workers, Path(folder))}
        start = time.perf_counter()
        connect(None)  # the Ray runner reuses this session; its start-up is timed apart
        ray_start = time.perf_counter() - start
        rows["ray"] = measure("ray", args.family, args.trials, args.workers, Path(folder))
    print(f"{'runner':>7} {'trials':>6} {'epochs':>6} {'wall s':>7} {'trials/s':>8} "
          f"{'best R²':>8} {'training s':>10} {'bookkeeping s/trial':>19} {'median':>6}")
    for name, row in rows.items():
        print(f"{name:>7} {row['trials']:>6.0f} {row['epochs']:>6.0f} {row['wall']:>7.2f} "
              f"{row['trials/s']:>8.2f} {row['best']:>8.4f} {row['training']:>10.2f} "
              f"{row['per_trial']:>19.3f} {row['median']:>6.3f}")
    print(f"Ray start-up (local, once per run): {ray_start:.2f} s, not in the Ray row.\n"
          "bookkeeping s/trial: (wall x slots - training) / trials, start-up of worker "
          "processes or actors included; median: per trial, from its start to its end in "
          "the storage, minus its training.")


if __name__ == "__main__":
    main()
