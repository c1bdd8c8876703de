"""The GPU paths on a machine that has a GPU: one prepared run that prints every figure.

No GPU has been lent to this project's sessions so far, so none of these paths has run on
real hardware; this script is what a session lent one (``device`` tool: one H200, 15
minutes in all, no package registry there) runs in one call. Sections:

- ``devices``: what torch sees, ``--devices auto`` and how workers are spread over GPUs
  (``plan_workers``, several trials per GPU);
- ``parity``: a population trained on the GPU against the same trials one at a time on
  the GPU (same seeds): the largest test-R² gap over every epoch, for every schedule family
  and optimizer;
- ``scaling``: per-model epoch time against population size, up to a few thousand models
  (``--sizes``), on the GPU and, for the smaller sizes, on the CPU;
- ``homework``: ``hpo run`` of the three homework studies on the GPU, 1, 2 and 4 trials per
  GPU (populations on CUDA in worker processes), against the CPU's default run, side by
  side; every trial's recorded device is checked.

Ray's fractional GPUs are not here: Ray's wheel (79 MB) does not fit the 64 MiB that a
device call carries, and that machine reaches no package registry.

On the device machine (python3 there holds CUDA torch; Optuna is carried as wheels built
for its Python 3.12, fetched here first):

    .venv/bin/pip download --dest gpu-wheels --no-deps --python-version 3.12 \\
        --only-binary=:all: --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \\
        -c constraints.txt optuna alembic sqlalchemy colorlog Mako greenlet
    # device run, carry ["gpu-wheels"]:
    python3 -m pip install -q --no-index --find-links gpu-wheels optuna && \\
        PYTHONPATH=. PYTHONUNBUFFERED=1 python3 benchmarks/bench_gpu.py | tee $OUT/gpu.txt

Here, without a GPU, ``--device cpu --quick`` runs every section small, to check the script.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import torch

import hpo
from hpo import LabData, RunOptions
from hpo.data import prepare_folds
from hpo.runners.devices import plan_workers, resolve_devices
from hpo.study.file import load_from_file
from hpo.train.batched import train_population
from hpo.train.loop import train_params
from search_spaces import (
    FAMILIES,
    suggest_architecture,
    suggest_optimizer,
    suggest_scheduler,
    suggest_training,
)
from studies.lr_schedules import FAMILIES as HOMEWORK_FAMILIES

sys.path.insert(0, str(Path(__file__).parent))
from bench_population import epochs_only

STUDY_FILE = "studies/lr_schedules.py"


def devices(args: argparse.Namespace) -> None:
    count = torch.cuda.device_count()
    names = [torch.cuda.get_device_name(i) for i in range(count)]
    print(f"devices: torch {torch.__version__}, CUDA available {torch.cuda.is_available()}, "
          f"{count} GPU(s) {names}")
    found = resolve_devices("auto")
    for per_device in (1, 2, 4):
        slots = plan_workers(found, trials_per_device=per_device)
        print(f"devices: --devices auto -> {found}; {per_device} trial(s) per device -> "
              f"{[(s.device, s.threads) for s in slots]}")


def _parity_space(trial: optuna.Trial) -> dict[str, Any]:
    # No batch norm: after a one-input layer it makes that layer's weights scale-free, their
    # true gradient ~0, and Adam turns the rounding noise in it into whole steps, in any
    # two implementations that sum in different orders (2e-7 to 3e-3 in R² in float64 on
    # the CPU, this tree and the one before it alike); tests/test_population.py checks
    # batch norm where that does not arise.
    return {**suggest_architecture(trial, hidden_layers=2, width=16, dropout=0.0,
                                   batch_norm=False),
            **suggest_optimizer(trial),
            **suggest_training(trial, batch_size=32, epochs=12),
            **suggest_scheduler(trial, families=list(FAMILIES))}


class _Float64Part:
    """A fold's part whose tensors are float64 (as tests/test_population.py's parity)."""

    def __init__(self, part: Any) -> None:
        self.x, self.y = part.x.astype("float64"), part.y.astype("float64")

    def __len__(self) -> int:
        return len(self.x)

    def tensors(self, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor(self.x, device=device), torch.tensor(self.y, device=device)


def parity(args: argparse.Namespace) -> None:
    """In float64, where rounding (1e-16) cannot grow into a visible gap: what remains is a
    difference of the algorithm (in float32 a trial at a high lr, whose R² swings epoch to
    epoch, turns last-bit differences into 1e-2 within a few epochs)."""
    fold = prepare_folds(LabData(n=400, seed=0), test_size=0.3, seed=0)[0]
    fold = dataclasses.replace(fold, train=_Float64Part(fold.train),
                               test=_Float64Part(fold.test))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    params = [_parity_space(study.ask()) for _ in range(8 if args.quick else 48)]
    seeds = list(range(len(params)))
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # build_model's weights in both paths
    try:
        members = train_population(params, fold, seeds, device=args.device)
        alone = [train_params(p, fold, seed=s, device=args.device)[2]
                 for p, s in zip(params, seeds, strict=True)]
    finally:
        torch.set_default_dtype(default)
    gaps, compared = [], set()
    for p, member, single in zip(params, members, alone, strict=True):
        if member.stopped == "diverged" or single.diverged:
            print(f"parity: {p['scheduler']}/{p['optimizer']} diverged (population "
                  f"{member.stopped == 'diverged'}, alone {single.diverged})")
            continue
        together = [row["test_r2"] for row in member.rows]
        gaps.append(max(abs(a - b) for a, b in
                        zip(together, single.history["test_r2"], strict=True)))
        compared.add((str(p["scheduler"]), str(p["optimizer"])))
        if args.verbose and gaps[-1] > 1e-9:
            print(f"parity: gap {gaps[-1]:.1e}: {p}")
    print(f"parity on {args.device} (float64): {len(gaps)} of {len(params)} trials compared, "
          f"{len({f for f, _ in compared})} families, optimizers "
          f"{sorted({o for _, o in compared})}: largest |test R² gap| over every epoch "
          f"{max(gaps):.1e}, median {statistics.median(gaps):.1e}, "
          f"{sum(g <= 1e-9 for g in gaps)} trials within 1e-9 (population against one at a "
          "time, same seeds; a trial at a high lr whose R² swings epoch to epoch can grow "
          "float64 rounding past that: --verbose names them)")


def scaling(args: argparse.Namespace) -> None:
    """Epochs of one population of lab models (`bench_population.epochs_only`: building
    their initial weights through nn.Modules, a CPU cost per model, is left out; at
    thousands of models it would outweigh a GPU's epochs)."""
    fold = prepare_folds(LabData(n=1000, seed=0), test_size=0.3, seed=0)[0]
    sizes = [int(s) for s in args.sizes.split(",")]
    places = [args.device] if args.device == "cpu" else [args.device, "cpu"]
    epochs = 5
    for device in places:
        for size in sizes:
            if device == "cpu" and size > args.cpu_max:
                continue
            seconds = statistics.median(epochs_only(fold, size, epochs, device)
                                        for _ in range(args.repeats))
            print(f"scaling on {device}: population {size:5d}: "
                  f"{seconds / epochs / size * 1000:8.4f} ms per model-epoch, "
                  f"{size * epochs / seconds:9.0f} model-epochs/s")


def homework(args: argparse.Namespace) -> None:
    trials = 20 if args.quick else args.trials
    runs = [("cpu", 1)] + [(args.device, k) for k in (1, 2, 4)] if args.device != "cpu" \
        else [("cpu", 1)]
    for device, per_device in runs:
        total, best, seen, workers = 0.0, [], set(), set()
        for family in HOMEWORK_FAMILIES:
            # From the study file, as `hpo run` loads it: CUDA workers are spawned, and a
            # spawned worker loads the file again (a space built in a function does not
            # pickle: one in-process worker would run instead).
            study = dataclasses.replace(load_from_file(STUDY_FILE, f"lr-{family}"),
                                        n_trials=trials)
            options = RunOptions(storage=f"{tempfile.mkdtemp()}/gpu.journal", progress=False,
                                 devices=device, trials_per_device=per_device)
            start = time.perf_counter()
            result = hpo.run(study, options)
            total += time.perf_counter() - start
            best.append(result.best_value)
            seen |= {str(t.user_attrs.get("device")) for t in result.trials}
            workers.add(len({t.user_attrs.get("worker") for t in result.trials}))
        side = "CPU default" if device == "cpu" else f"{device}, {per_device} per device"
        print(f"homework ({side}): {3 * trials} trials in {total:.2f} s, "
              f"{3 * trials / total:.1f} trials/s, best R² {[round(b, 4) for b in best]}, "
              f"devices recorded {sorted(seen)}, workers per study {sorted(workers)}")


SECTIONS = {"devices": devices, "parity": parity, "scaling": scaling, "homework": homework}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", choices=[*SECTIONS, []], default=[])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--sizes", default="1,8,64,256,1024,4096")
    parser.add_argument("--cpu-max", type=int, default=256, help="largest CPU population")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=100, help="homework trials per family")
    parser.add_argument("--quick", action="store_true", help="small sizes: check the script")
    parser.add_argument("--verbose", action="store_true", help="parity: the trials that differ")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeats = "1,8", 1
    if args.device != "cpu" and not torch.cuda.is_available():
        raise SystemExit(f"bench_gpu: {args.device} asked, but torch sees no CUDA device; "
                         "run it on a GPU machine, or pass --device cpu --quick to check it.")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")
    for name in args.sections or SECTIONS:
        start = time.perf_counter()
        SECTIONS[name](args)
        print(f"({name}: {time.perf_counter() - start:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
