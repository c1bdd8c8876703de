"""How fast `hpo run` searches, against what a course student writes by hand.

Sections (each prints its figures; every comparison runs side by side in this one process,
so the load of other jobs on a shared machine hits both sides alike):

- ``homework``: the lab homework (exponential, step, cosine; TPE + median pruning), timed as
  a user's script times it: imports done, the clock around ``hpo.run`` (worker start-up
  counts) against a hand-written Optuna study around the lab's per-sample ``DataLoader``
  loop. Also the framework tax: the run's wall time against its trials' ``seconds``.
- ``grid``: the course's mtcars grid, lr {0.02, 0.05, 0.08} x epochs {10, 200, 500}, 3-fold
  CV R², against skorch's ``GridSearchCV`` as the course wrote it.
- ``diabetes``: scikit-learn's diabetes data (442 rows) as a CSV, the csv_template space,
  30 trials, against ``RidgeCV``.
- ``scaling``: per-model epoch time of a population of 1, 8, 64, 256 lab models, against one
  model on the one-at-a-time path, and against ``torch.func`` (``stack_module_state`` + vmap).
- ``workers``: one homework study with 1 worker against 2, each timed in a fresh process.
- ``startup``: seconds until 2 worker processes are ready, forked, from a forkserver, spawned.
- ``pruning``: epochs trained and best R² with and without each pruner, over seeds.
- ``places``: wall time and epochs per trial against how many trials one worker holds at
  once (``population_size``), and one at a time.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/bench_population.py homework grid ...
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import hpo
from hpo import CsvData, LabData, Mtcars, RunOptions, Study
from hpo.data import prepare_folds
from hpo.store.attrs import trial_history_rows
from hpo.train.batched import Population, train_population
from hpo.train.loop import train_params
from search_spaces import (
    Choice,
    build_scheduler,
    suggest_architecture,
    suggest_optimizer,
    suggest_scheduler,
    suggest_training,
)
from studies.csv_template import space as csv_space
from studies.lr_schedules import FAMILIES, homework_space

optuna.logging.set_verbosity(optuna.logging.WARNING)
HOMEWORK = {"hidden_layers": 2, "width": 20, "activation": "tanh", "batch_norm": False,
            "dropout": 0.0, "optimizer": "adam", "weight_decay": 0.0, "lr": 0.01,
            "scheduler": "cosine", "cosine_floor_fraction": 0.01, "batch_size": 64,
            "epochs": 50}


CPU: dict[str, float] = {}  # the last timed call's CPU seconds (this process and children)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start, cpu = time.perf_counter(), _cpu()
    value = fn()
    CPU["last"] = _cpu() - cpu
    return time.perf_counter() - start, value


def _cpu() -> float:
    # Children count too (worker processes); on a loaded machine CPU time is steadier.
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def training_seconds(trial: optuna.trial.FrozenTrial) -> float:
    """The trial's own training time: ``seconds`` of a finished trial, else the last epoch's
    cumulative ``seconds`` in its history (a pruned trial trained too)."""
    if "seconds" in trial.user_attrs:
        return float(trial.user_attrs["seconds"])
    history = trial_history_rows(trial) or [{}]
    return float(history[-1].get("seconds", 0.0))


def _tax(trials: list[Any], wall: float, work: float) -> str:
    """The framework tax, which has a meaning for one worker only (several train at once)."""
    workers = len({t.user_attrs.get("worker") for t in trials})
    if workers > 1:
        return f"tax: n/a, {workers} workers (wall {wall:.1f} s, training {work:.1f} s)"
    return f"tax {wall / work - 1:+.1%} (wall {wall:.1f} s, training {work:.1f} s)"


def hpo_run(study: Study, workers: int = 1, mode: str = "auto") -> tuple[float, Any]:
    folder = tempfile.mkdtemp()
    options = RunOptions(storage=f"{folder}/b.journal", workers=workers or None, progress=False,
                         mode=mode)
    return timed(lambda: hpo.run(study, options))


# --- the hand-written baseline: the lab's Dataset, DataLoader and loop, inside Optuna ----

class LabDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.tensor(self.x[i], dtype=torch.float32),
                torch.tensor(self.y[i], dtype=torch.float32))


def student_objective(family: str, fold: Any) -> Callable[[optuna.Trial], float]:
    train = DataLoader(LabDataset(fold.train.x, fold.train.y), batch_size=64, shuffle=True)
    test = DataLoader(LabDataset(fold.test.x, fold.test.y), batch_size=64)

    def objective(trial: optuna.Trial) -> float:
        params = homework_space(family)(trial)
        model = nn.Sequential(nn.Linear(1, 20), nn.Tanh(), nn.Linear(20, 20), nn.Tanh(),
                              nn.Linear(20, 1))
        optimizer = torch.optim.Adam(model.parameters(), lr=params["lr"])
        scheduler = build_scheduler(optimizer, params, epochs=50)
        loss_fn, r2 = nn.MSELoss(), 0.0
        for epoch in range(50):
            model.train()
            for x, y in train:
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()
            scheduler.step()
            model.eval()
            with torch.no_grad():
                preds = torch.cat([model(x) for x, _ in test]).numpy()
            truth = fold.test.y
            r2 = 1 - ((truth - preds) ** 2).sum() / ((truth - truth.mean()) ** 2).sum()
            trial.report(float(r2), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(r2)

    return objective


def student_search(family: str, fold: Any, n_trials: int) -> tuple[float, float, int]:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0),
                                pruner=optuna.pruners.MedianPruner())
    seconds, _ = timed(lambda: study.optimize(student_objective(family, fold), n_trials))
    return seconds, study.best_value, sum(len(t.intermediate_values) for t in study.trials)


def homework(args: argparse.Namespace) -> None:
    """The three homework studies, baseline then hpo family by family, ``--repeats`` times
    (the same studies each time: the repeats measure the machine's noise, which moves the
    baseline's speed most)."""
    args.baseline_trials = args.baseline_trials or args.trials
    print(f"homework: baseline {args.baseline_trials} trials/family, hpo {args.trials}"
          f"/family, hpo workers {args.workers}")
    ratios = [homework_once(args) for _ in range(args.repeats)]
    if len(ratios) > 1:
        print(f"homework: median of {len(ratios)} runs {statistics.median(ratios):.1f}x "
              f"(min {min(ratios):.1f}x, max {max(ratios):.1f}x)")


def homework_once(args: argparse.Namespace) -> float:
    fold = prepare_folds(LabData(n=1000, seed=0), test_size=0.3, seed=0)[0]
    totals = {"base": [0.0, 0], "hpo": [0.0, 0]}
    for family in args.families.split(","):
        base_s, base_r2, base_epochs = student_search(family, fold, args.baseline_trials)
        base_cpu = CPU["last"]
        study = Study(name=f"lr-{family}", space=homework_space(family), data=LabData(n=1000),
                      sampler="tpe", pruner="median", n_trials=args.trials, seed=0)
        hpo_s, result = hpo_run(study, workers=args.workers, mode=args.mode)
        hpo_cpu = CPU["last"]
        work = sum(training_seconds(t) for t in result.trials)
        epochs = sum(t.user_attrs.get("epochs_run", 0) for t in result.trials)
        totals["base"][0] += base_s
        totals["base"][1] += args.baseline_trials
        totals["hpo"][0] += hpo_s
        totals["hpo"][1] += args.trials
        speedup = args.trials / hpo_s / (args.baseline_trials / base_s)
        print(f"  {family:12s} baseline {args.baseline_trials / base_s:6.2f} trials/s best R² "
              f"{base_r2:.4f} | hpo {args.trials / hpo_s:6.2f} trials/s best R² "
              f"{result.best_value:.4f} | speed-up {speedup:5.1f}x"
              f" | epochs/s {base_epochs / base_s:.0f} vs {epochs / hpo_s:.0f}"
              f" | CPU s/trial {base_cpu / args.baseline_trials:.3f} vs {hpo_cpu / args.trials:.3f}"
              f" ({base_cpu / args.baseline_trials / (hpo_cpu / args.trials):.1f}x)"
              f" | {_tax(result.trials, hpo_s, work)}")
    base_rate = totals["base"][1] / totals["base"][0]
    hpo_rate = totals["hpo"][1] / totals["hpo"][0]
    print(f"  all: baseline {base_rate:.2f} trials/s, hpo {hpo_rate:.2f} trials/s, "
          f"{hpo_rate / base_rate:.1f}x", flush=True)
    return hpo_rate / base_rate


def grid_space(trial: optuna.Trial) -> dict[str, Any]:
    """The course's grid: linear regression, full-batch SGD, lr x epochs."""
    return {
        **suggest_architecture(trial, hidden_layers=0),
        **suggest_optimizer(trial, optimizer="sgd", weight_decay=0.0, momentum=0.0,
                            nesterov=False),
        **suggest_training(trial, batch_size="full", epochs=Choice([10, 200, 500])),
        **suggest_scheduler(trial, families="constant",
                            overrides={"constant": {"lr": Choice([0.02, 0.05, 0.08])}}),
    }


def grid(args: argparse.Namespace) -> None:
    from sklearn.model_selection import GridSearchCV
    from skorch import NeuralNetRegressor

    data = Mtcars(features=("wt",), target="mpg").load()
    x, y = data.x.astype(np.float32), data.y.astype(np.float32)
    lrs, epochs = [0.02, 0.05, 0.08], [10, 200, 500]
    ratios = []
    for repeat in range(args.repeats):
        net = NeuralNetRegressor(nn.Linear, module__in_features=1, module__out_features=1,
                                 optimizer=torch.optim.SGD, train_split=None, verbose=0)
        search = GridSearchCV(net, {"lr": lrs, "max_epochs": epochs}, cv=3, scoring="r2")
        sk_s, _ = timed(lambda search=search: search.fit(x, y))
        study = Study(name="grid", space=grid_space, data=Mtcars(features=("wt",),
                      target="mpg"), cv_folds=3, sampler="grid", pruner="none",
                      grid={"lr": lrs, "epochs": epochs}, seed=0)
        hpo_s, result = hpo_run(study, workers=args.workers, mode=args.mode)
        work = sum(training_seconds(t) for t in result.trials)
        print(f"grid #{repeat}: skorch {sk_s:.2f} s best CV R² {search.best_score_:.4f} "
              f"{search.best_params_} | hpo {hpo_s:.2f} s best CV R² {result.best_value:.4f} "
              f"{result.best_params} | {sk_s / hpo_s:.1f}x"
              f" | tax {hpo_s / work - 1:+.1%} (training {work:.2f} s)")
        ratios.append(sk_s / hpo_s)
    print(f"grid: median of {len(ratios)} repeats {statistics.median(ratios):.1f}x "
          f"(min {min(ratios):.1f}x, max {max(ratios):.1f}x)")


def diabetes(args: argparse.Namespace) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import cross_val_score

    frame = load_diabetes(as_frame=True).frame
    path = Path(tempfile.mkdtemp()) / "diabetes.csv"
    frame.to_csv(path, index=False)
    features = tuple(c for c in frame.columns if c != "target")
    ridge_s, scores = timed(lambda: cross_val_score(
        RidgeCV(alphas=np.logspace(-3, 3, 13)), frame[list(features)], frame["target"],
        cv=3, scoring="r2"))
    study = Study(name="diabetes", space=csv_space,
                  data=CsvData(str(path), features=features, target="target"), standardize=True,
                  cv_folds=3, sampler="tpe", pruner="median", n_trials=30, seed=0)
    hpo_s, result = hpo_run(study, workers=args.workers, mode=args.mode)
    print(f"diabetes: RidgeCV {ridge_s:.2f} s CV R² {scores.mean():.4f} | hpo 30 trials "
          f"{hpo_s:.1f} s best CV R² {result.best_value:.4f}")
    print(f"  {populated_summary(result.trials)}")


def populated_summary(trials: list[optuna.trial.FrozenTrial]) -> str:
    """How many trials trained in a population, the populations' sizes (in trials), and
    how the trials ended."""
    sizes: dict[tuple[int, str], int] = {}  # (first trial of the population, batch size)
    for trial in trials:
        if "population" in trial.user_attrs:
            key = (int(trial.user_attrs["population"]), str(trial.params.get("batch_size")))
            sizes[key] = sizes.get(key, 0) + 1
    populated = sum(sizes.values())
    groups = sorted(f"{size} (batch {batch})" for (size, batch), count in sizes.items()
                    for _ in range(count // size))
    ended = collections.Counter(str(t.user_attrs.get("ended", t.state.name)) for t in trials)
    return (f"{populated} of {len(trials)} trials trained in populations of "
            f"{', '.join(groups) or 'none'}; ended: {dict(ended)}")


def scaling(args: argparse.Namespace) -> None:
    fold = prepare_folds(LabData(n=1000, seed=0), test_size=0.3, seed=0)[0]
    epochs = 5
    params = {**HOMEWORK, "epochs": epochs}
    rows: dict[str, list[float]] = {}
    train_params({**params, "epochs": 1}, fold, seed=0)  # warm-up: first calls pay set-up
    train_population([{**params, "epochs": 1}] * 2, fold, [0, 1])
    for _ in range(args.repeats):
        seconds, _ = timed(lambda: train_params(params, fold, seed=0))
        rows.setdefault("one at a time", []).append(seconds / epochs)
        for size in (1, 8, 64, 256):
            seconds, _ = timed(lambda size=size: train_population(
                [params] * size, fold, list(range(size))))
            rows.setdefault(f"population {size}", []).append(seconds / epochs / size)
        for size in (1, 8, 64, 256):  # the step time alone: the models built beforehand
            rows.setdefault(f"population {size}, epochs", []).append(
                epochs_only(fold, size, epochs) / epochs / size)
        for size in (64,):
            seconds = vmap_epochs(fold, size, epochs)
            rows.setdefault(f"torch.func vmap {size}", []).append(seconds / epochs / size)
    for name, values in rows.items():
        print(f"scaling: {name:22s} {statistics.median(values) * 1000:8.3f} ms per model-epoch")


def epochs_only(fold: Any, size: int, epochs: int, device: str = "cpu") -> float:
    """Seconds for ``epochs`` epochs of a population of ``size`` lab models, timed after
    its first epoch: without building each model's initial weights (`train_population`'s
    rows above include it, a cost per model, not per epoch). On a GPU the clock waits for
    its queued work."""
    population = Population([{**HOMEWORK, "epochs": 10_000}] * size, fold, list(range(size)),
                            torch.device(device))
    population.epoch(1, None)  # first calls pay set-up
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for epoch in range(2, epochs + 2):
        population.epoch(epoch, None)
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def vmap_epochs(fold: Any, size: int, epochs: int) -> float:
    """The same lab models through stack_module_state + vmap + functional Adam (foreach)."""
    from torch.func import functional_call, grad_and_value, stack_module_state, vmap

    models = [nn.Sequential(nn.Linear(1, 20), nn.Tanh(), nn.Linear(20, 20), nn.Tanh(),
                            nn.Linear(20, 1)) for _ in range(size)]
    weights, _ = stack_module_state(models)  # type: ignore[arg-type]
    base = models[0].to("meta")
    x, y = fold.train.tensors()

    def loss(w: dict[str, torch.Tensor], xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return ((functional_call(base, w, (xb,)) - yb) ** 2).mean()

    step = vmap(grad_and_value(loss), in_dims=(0, None, None))
    leaves = [w.detach().requires_grad_(False) for w in weights.values()]
    names = list(weights)
    optimizer = torch.optim.Adam(leaves, lr=0.01, foreach=True)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for xb, yb in zip(x[order].split(64), y[order].split(64), strict=True):
            grads, _ = step(dict(zip(names, leaves, strict=True)), xb, yb)
            for leaf, name in zip(leaves, names, strict=True):
                leaf.grad = grads[name]
            optimizer.step()
    return time.perf_counter() - start


def cosine_space(trial: optuna.Trial) -> dict[str, Any]:
    """The homework's cosine space at module level: worker processes can unpickle it (the
    study file's closure cannot travel, so ``hpo run`` runs that one in one process)."""
    return dict(homework_space("cosine")(trial))


def workers(args: argparse.Namespace) -> None:
    """1 worker against 2: what ``hpo run`` does on a 1-core slot (one in-process worker
    with one thread: the study file's closure space cannot travel to worker processes)
    against ``--workers 2`` (two one-thread worker processes).

    Each measurement runs in a fresh process (``workers-once``) that imports torch, optuna
    and hpo before its clock starts, so both sides pay the same one-time costs (a process
    that had already imported ``torch._dynamo``, or run a study, would be warm); the clock
    is around ``hpo.run`` alone, worker start-up included. The two sides alternate, and
    each measurement prints the load average before it, since other jobs on the machine
    take cores from the two workers.
    """
    sizes = [int(n) for n in args.worker_trials.split(",")] if args.worker_trials else [
        args.trials]
    trees = {"": os.environ.get("PYTHONPATH", ".")}
    if args.before:  # the same measurements of another checkout's hpo (e.g. main's)
        trees = {"before: ": args.before, "after: ": trees[""]}
    for trials in sizes:
        times: dict[tuple[str, int], list[float]] = {}
        for repeat in range(args.repeats):
            flip = repeat % 2 == 1  # alternate which side goes first
            for tree in (list(trees)[::-1] if flip else list(trees)):
                for count in ((2, 1) if flip else (1, 2)):
                    load = Path("/proc/loadavg").read_text().split()[:3]
                    result = _fresh_run(trials, count, args.mode, trees[tree])
                    times.setdefault((tree, count), []).append(result["seconds"])
                    print(f"workers #{repeat} {tree}{trials} trials, {count} worker(s): "
                          f"{result['seconds']:.2f} s, CPU {result.get('cpu', 0):.2f} s (load "
                          f"average before {' '.join(load)}; "
                          f"start {result['start']}; torch._dynamo imported before the clock: "
                          f"{result['dynamo_before']}, after: {result['dynamo_after']}; "
                          f"epochs {result['epochs']}, best R² {result['best']:.4f})",
                          flush=True)
        for tree in trees:
            ones, twos = times[(tree, 1)], times[(tree, 2)]
            one, two = statistics.median(ones), statistics.median(twos)
            ratios = sorted(a / b for a, b in zip(ones, twos, strict=True))
            print(f"workers: {tree}{trials} cosine trials, median of {args.repeats}: 1 worker "
                  f"(in-process, 1 thread) {one:.2f} s, 2 workers {two:.2f} s: "
                  f"{one / two:.2f}x (per-repeat ratios {', '.join(f'{r:.2f}' for r in ratios)})",
                  flush=True)


def _fresh_run(trials: int, count: int, mode: str, tree: str) -> dict[str, Any]:
    command = [sys.executable, "-u", __file__, "workers-once", "--trials", str(trials),
               "--workers", str(count), "--mode", mode]
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": tree})
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def workers_once(args: argparse.Namespace) -> None:
    """One side of ``workers``, in this fresh process (see there); prints one JSON line."""
    from hpo.runners.devices import plan_workers, resolve_devices

    try:
        from hpo.runners.optuna_runner import start_method
    except ImportError:  # hpo before worker processes could be forked

        def start_method(_slots: Any) -> str:
            return "spawn"

    torch.set_num_threads(1)  # as the caller of ``hpo run`` on a 1-core slot
    if args.workers == 1:  # hpo's default on a 1-core machine: one in-process worker, 1 thread
        os.cpu_count = lambda: 1  # this fresh process is that machine
    space = homework_space("cosine") if args.workers == 1 else cosine_space
    study = Study(name="w", space=space, data=LabData(n=1000), sampler="tpe",
                  pruner="median", n_trials=args.trials, seed=0)
    dynamo_before = "torch._dynamo" in sys.modules
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the closure's "one worker in this process" notice
        seconds, result = hpo_run(study, workers=0 if args.workers == 1 else args.workers,
                                  mode=args.mode)
    slots = plan_workers(resolve_devices("cpu"), 1, args.workers)
    epochs = sum(int(t.user_attrs.get("epochs_run", 0)) for t in result.trials)
    print(json.dumps({"seconds": seconds, "cpu": CPU["last"], "best": result.best_value,
                      "epochs": epochs,
                      "start": "in-process" if args.workers == 1 else start_method(slots),
                      "dynamo_before": dynamo_before,
                      "dynamo_after": "torch._dynamo" in sys.modules}))


def _ready(answers: Any, start: float) -> None:
    import hpo.runners.optuna_runner  # noqa: F401  what a worker imports (there if forked)

    answers.put(time.perf_counter() - start)


def startup(args: argparse.Namespace) -> None:
    """Seconds until 2 worker processes are ready to train (hpo's runner imported), for
    each start method; the methods alternate, ``--repeats`` times."""
    for repeat in range(args.repeats):
        methods = ["fork", "forkserver", "spawn"]
        for method in methods if repeat % 2 == 0 else methods[::-1]:
            load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
            # Each in a fresh process: a forkserver, once started, serves the whole process.
            command = [sys.executable, "-u", __file__, "startup-once", "--method", method]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            print(f"startup #{repeat} {method:10s}: 2 workers ready after "
                  f"{float(done.stdout.split()[-1]):.2f} s (load average before {load})",
                  flush=True)


def startup_once(args: argparse.Namespace) -> None:
    import multiprocessing

    method = args.method
    context: Any = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["hpo.runners.optuna_runner"])
    answers = context.SimpleQueue()
    start = time.perf_counter()
    processes = [context.Process(target=_ready, args=(answers, start)) for _ in range(2)]
    for process in processes:
        process.start()
    ready = max(answers.get(), answers.get())
    for process in processes:
        process.join()
    print(f"{ready:.4f}")


def pruning(args: argparse.Namespace) -> None:
    for pruner in ("none", "median", "percentile", "sha", "hyperband"):
        epochs, best = [], []
        for seed in range(args.seeds):
            study = Study(name="p", space=homework_space("cosine"), data=LabData(n=1000),
                          sampler="tpe", pruner=pruner, n_trials=args.trials, seed=seed)
            _, result = hpo_run(study, workers=args.workers, mode=args.mode)
            epochs.append(sum(t.user_attrs.get("epochs_run", 0) for t in result.trials))
            best.append(result.best_value)
        print(f"pruning: {pruner:10s} epochs trained (median of {args.seeds} seeds) "
              f"{statistics.median(epochs):6.0f}, best R² median {statistics.median(best):.4f} "
              f"min {min(best):.4f}")


def places(args: argparse.Namespace) -> None:
    """Wall time and epochs per trial against how many trials a worker holds at once
    (``population_size``), one in-process worker, the homework studies; one at a time
    (``--mode single``) first. Sizes alternate order repeat by repeat."""
    sizes = [int(n) for n in args.sizes.split(",")]
    runs: dict[str, list[tuple[float, int, float]]] = {}
    for repeat in range(args.repeats):
        for family in args.families.split(","):
            study = Study(name=f"lr-{family}", space=homework_space(family),
                          data=LabData(n=1000), sampler="tpe", pruner="median",
                          n_trials=args.trials, seed=0)
            labels = ["single"] + [str(size) for size in sizes]
            for label in labels if repeat % 2 == 0 else labels[::-1]:
                single = label == "single"
                options = RunOptions(storage=f"{tempfile.mkdtemp()}/b.journal", workers=1,
                                     progress=False, mode="single" if single else "auto",
                                     population_size=sizes[0] if single else int(label))
                seconds, result = timed(
                    lambda study=study, options=options: hpo.run(study, options))
                epochs = sum(int(t.user_attrs.get("epochs_run", 0)) for t in result.trials)
                runs.setdefault(f"{family} {label}", []).append(
                    (seconds, epochs, result.best_value))
                print(f"places #{repeat} {family:12s} {label:>6s}: {seconds:6.2f} s, "
                      f"{epochs / args.trials:5.1f} epochs/trial, best R² "
                      f"{result.best_value:.4f}", flush=True)
    for key, done in runs.items():
        print(f"places: {key:20s} median of {len(done)}: "
              f"{statistics.median(r[0] for r in done):6.2f} s, "
              f"{statistics.median(r[1] for r in done) / args.trials:5.1f} epochs/trial")


SECTIONS = {"homework": homework, "grid": grid, "diabetes": diabetes, "scaling": scaling,
            "workers": workers, "workers-once": workers_once, "startup": startup,
            "startup-once": startup_once, "pruning": pruning, "places": places}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="+", choices=SECTIONS)
    parser.add_argument("--method", default="fork",
                        help="startup-once: fork, forkserver or spawn")
    parser.add_argument("--trials", type=int, default=100, help="hpo trials per study")
    parser.add_argument("--baseline-trials", type=int, default=0,
                        help="hand-written baseline trials per family; 0: as many as --trials "
                             "(fewer flatter hpo: the baseline's pruner then prunes little)")
    parser.add_argument("--workers", type=int, default=0,
                        help="hpo worker processes; 0: hpo's default (a 1-thread one per core)")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--mode", default="auto", choices=("auto", "population", "single"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker-trials", default="",
                        help="workers: comma-separated trial counts (default: --trials)")
    parser.add_argument("--before", default="",
                        help="workers: also time the hpo of this checkout (e.g. main's)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sizes", default="8,16,32,64",
                        help="places: population sizes (trials a worker holds at once)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("command: python -u benchmarks/bench_population.py " + " ".join(sys.argv[1:]))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"load average {Path('/proc/loadavg').read_text().split()[:3]}")
    for section in args.sections:
        SECTIONS[section](args)


if __name__ == "__main__":
    main()
