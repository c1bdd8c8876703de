"""Where the framework tax goes: a homework study's wall time split into training, the
sampler, the pruner, the storage, and the rest (hpo's own Python, building models).

The tax is the run's wall time against the sum of its trials' training time (each trial's
``seconds``: in a population, the model's share of the population's epochs), as the
``tax`` column of ``bench_population.py homework``. torch's lazy imports (``torch._dynamo``,
paid by the first trial of a process) are warmed up first and a 3-trial run warms the rest,
so start-up costs are not counted: they are a process's, not a trial's.

The split times Optuna's calls by wrapping them: ``sampler`` is everything inside the
sampler's methods (the storage reads they make included), ``pruner`` everything inside
``pruner.prune``, ``storage`` the storage calls made outside those two, ``tell`` the
``Study.tell`` calls (and hpo's own ``tell``) minus what of them is already counted;
``other`` is what is left: hpo's own Python, building each model's initial weights, the
timing wrappers themselves.

Run:  PYTHONPATH=. .venv/bin/python -u benchmarks/bench_tax.py --mode auto --repeats 3
      (PYTHONPATH=<another checkout> times that checkout with this script)
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import torch
import torch._dynamo

import hpo
from hpo import LabData, RunOptions, Study
from hpo.runners import population, trials
from studies.lr_schedules import FAMILIES, homework_space

sys.path.insert(0, str(Path(__file__).parent))
from bench_population import training_seconds

SPENT: dict[str, float] = defaultdict(float)
_ACTIVE: list[str] = []


def _timed(category: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` whose time counts for ``category`` unless an outer timed call already counts."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _ACTIVE:
            return fn(*args, **kwargs)
        _ACTIVE.append(category)
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[category] += time.perf_counter() - start
            _ACTIVE.pop()
    return wrapper


def instrument(detail: bool) -> None:
    samplers = {optuna.samplers.TPESampler, optuna.samplers.RandomSampler}
    for cls in samplers:
        for name in ("infer_relative_search_space", "sample_relative", "sample_independent",
                     "before_trial", "after_trial"):
            setattr(cls, name, _timed("sampler", getattr(cls, name)))
    for cls in (optuna.pruners.PercentilePruner, optuna.pruners.MedianPruner,
                optuna.pruners.NopPruner, optuna.pruners.SuccessiveHalvingPruner,
                optuna.pruners.HyperbandPruner, *_hpo_pruners()):
        if "prune" in vars(cls):
            cls.prune = _timed("pruner", cls.prune)  # type: ignore[method-assign]
    storages = [optuna.storages.JournalStorage, optuna.storages.RDBStorage]
    for cls in storages:
        for name, value in list(vars(cls).items()):
            if callable(value) and not name.startswith("_"):
                setattr(cls, name, _timed(f"storage {name}" if detail else "storage", value))
    optuna.Study.tell = _timed("tell", optuna.Study.tell)  # type: ignore[method-assign]
    # hpo's own tell (hpo.store.optuna_internals, where the tree timed has it), as the
    # runners imported it.
    for module in (population, trials):
        if hasattr(module, "tell"):
            module.tell = _timed("tell", module.tell)


def _hpo_pruners() -> list[type]:
    """hpo's own median and percentile pruners, where the tree timed has them (stop 15's
    and later: ``hpo.study.pruners``)."""
    try:
        from hpo.study import pruners
    except ImportError:
        return []
    return [pruners.MedianPruner, pruners.PercentilePruner]


def run_once(family: str, trials: int, mode: str, pruner: str) -> tuple[float, float]:
    folder = tempfile.mkdtemp()
    study = Study(name=f"lr-{family}", space=homework_space(family), data=LabData(n=1000),
                  sampler="tpe", pruner=pruner, n_trials=trials, seed=0)
    start = time.perf_counter()
    # One in-process worker: the tax means the wall time of one worker against its own
    # training, and the split's wrappers see this process only (forked workers, which take
    # this closure space since stop 8, would hide both).
    result = hpo.run(study, RunOptions(storage=f"{folder}/b.journal", progress=False,
                                       mode=mode, workers=1))
    wall = time.perf_counter() - start
    return wall, sum(training_seconds(t) for t in result.trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="auto", choices=("auto", "population", "single"))
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--pruner", default="median")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--split", action="store_true", help="time sampler, pruner, storage")
    parser.add_argument("--detail", action="store_true", help="with --split: storage by call")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")  # the study file's closure: "one worker" notice
    torch.set_num_threads(1)
    print("command: python -u benchmarks/bench_tax.py " + " ".join(sys.argv[1:]))
    print(f"hpo from {Path(hpo.__file__).parent.parent}, torch {torch.__version__}, "
          f"load average {Path('/proc/loadavg').read_text().split()[:3]}")
    run_once("cosine", 3, args.mode, args.pruner)  # warm-up: first-trial costs
    if args.split:
        instrument(args.detail)
    for family in args.families.split(","):
        taxes = []
        for repeat in range(args.repeats):
            SPENT.clear()
            wall, work = run_once(family, args.trials, args.mode, args.pruner)
            taxes.append(wall / work - 1)
            line = (f"{family:12s} #{repeat} {args.mode}: wall {wall:.2f} s, training "
                    f"{work:.2f} s, tax {wall / work - 1:+.1%}")
            if args.split:
                counted = sum(SPENT.values())
                parts = {**SPENT, "other": wall - work - counted}
                line += " | " + ", ".join(f"{name} {seconds:.2f} s ({seconds / work:+.1%})"
                                          for name, seconds in parts.items())
            print(line, flush=True)
        if args.repeats > 1:
            print(f"{family:12s} median tax {statistics.median(taxes):+.1%} over "
                  f"{args.repeats} runs (load {Path('/proc/loadavg').read_text().split()[:3]})")


if __name__ == "__main__":
    main()
