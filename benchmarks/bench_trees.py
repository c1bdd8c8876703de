"""``hpo run`` of the homework studies, this checkout against another one, side by side.

Each run is a fresh process that imports torch, optuna and hpo before its clock starts; the
clock is around ``hpo.run`` (one in-process worker, one thread, 1 core's default), and the
two checkouts alternate, family by family, repeat by repeat, so load on a shared machine
falls on both alike. Prints each run (seconds, epochs trained, finished trials, best R²)
and the totals per checkout. Repeat ``r`` runs every study with seed ``r`` (its data and
sampler), so the best R² of the two sides compare seed by seed: the paired difference is
printed. ``--single`` adds a third side, this checkout one trial at a time (``--mode
single``: what Optuna's own loop does), as the best R² to match.

    git worktree add --detach /tmp/before <commit>
    PYTHONPATH=. .venv/bin/python -u benchmarks/bench_trees.py --before /tmp/before \\
        --trials 300 --repeats 2

``--population-size`` sets ``RunOptions.population_size`` on both sides; ``--workers 2``
runs two forked worker processes on both sides instead of one in-process worker (trials
then interleave as the two processes race, so epochs and best R² differ run to run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_ONE_RUN = r"""
import json, sys, tempfile, time, warnings
warnings.simplefilter("ignore")
import torch
torch.set_num_threads(1)
import optuna
from optuna.trial import TrialState
import hpo
from hpo import LabData, RunOptions, Study
from studies.lr_schedules import homework_space
optuna.logging.set_verbosity(optuna.logging.WARNING)
trials, family, size, seed, mode, workers = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]),
                                             int(sys.argv[4]), sys.argv[5], int(sys.argv[6]))
study = Study(name="w", space=homework_space(family), data=LabData(n=1000), sampler="tpe",
              pruner="median", n_trials=trials, seed=seed)
options = RunOptions(storage=f"{tempfile.mkdtemp()}/b.journal", workers=workers, progress=False,
                     population_size=size, mode=mode)
start = time.perf_counter()
result = hpo.run(study, options)
seconds = time.perf_counter() - start
print(json.dumps({
    "seconds": seconds, "best": result.best_value,
    "epochs": sum(int(t.user_attrs.get("epochs_run", 0)) for t in result.trials),
    "complete": sum(t.state == TrialState.COMPLETE for t in result.trials)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the other checkout's root")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--families", default="cosine,step,exponential")
    parser.add_argument("--population-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes (forked: the study's space is a closure); "
                             "1: one in-process worker")
    parser.add_argument("--single", action="store_true",
                        help="also run this checkout one trial at a time")
    args = parser.parse_args()
    here = str(Path.cwd())
    sides = {"before": (str(Path(args.before).resolve()), "auto"), "after": (here, "auto")}
    if args.single:
        sides["single"] = (here, "single")
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"command: python {' '.join(sys.argv)}\nload average {' '.join(load)}", flush=True)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    for repeat in range(args.repeats):
        for family in args.families.split(","):
            order = list(sides) if repeat % 2 == 0 else list(sides)[::-1]
            for name in order:
                tree, mode = sides[name]
                run = _fresh_run(tree, args.trials, family, args.population_size, repeat, mode,
                                 args.workers)
                runs[name].append(run)
                print(f"#{repeat} {family:12s} {name:6s} {run['seconds']:6.2f} s, epochs "
                      f"{run['epochs']}, complete {run['complete']}, best R² "
                      f"{run['best']:.4f}", flush=True)
    totals = {name: sum(r["seconds"] for r in done) for name, done in runs.items()}
    for name, done in runs.items():
        print(f"{name}: {totals[name] / args.repeats:.2f} s per repeat "
              f"({len(args.families.split(','))} families x {args.trials} trials), epochs "
              f"{sum(r['epochs'] for r in done) / args.repeats:.0f} per repeat, best R² "
              f"{statistics.median(r['best'] for r in done):.4f} (median)")
    print(f"after against before: {totals['before'] / totals['after']:.2f}x")
    for other in [name for name in runs if name != "after"]:
        # Seed by seed: the same study, data and sampler seed on both sides.
        gaps = [a["best"] - b["best"] for a, b in zip(runs["after"], runs[other], strict=True)]
        print(f"best R², after minus {other}: mean {statistics.mean(gaps):+.5f} over "
              f"{len(gaps)} studies, after higher in {sum(g > 0 for g in gaps)}, lower in "
              f"{sum(g < 0 for g in gaps)}")


def _fresh_run(tree: str, trials: int, family: str, size: int, seed: int,
               mode: str, workers: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _ONE_RUN, str(trials), family, str(size),
                          str(seed), mode, str(workers)],
                         cwd=tree, env={**os.environ, "PYTHONPATH": tree}, capture_output=True,
                         text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    main()
