"""Time one lab trial fed by a per-sample DataLoader and by InMemoryBatches.

The trial is the homework's: a 1→20→20→1 tanh MLP, 700 training points in shuffled batches
of 64, 50 epochs, Adam (lr 0.01) with cosine annealing, tested on 300 points every epoch.
Three feeds run in this one process, alternately, a few times each:

- ``DataLoader``: ``DataLoader(RegressionDataset, batch_size=64, shuffle=True)`` for training
  and an unshuffled one of batch 64 for testing; `RegressionDataset` indexes stored tensors;
- ``DataLoader, lab's Dataset``: the same with the lab's own Dataset class (from the book
  *Inside Deep Learning*), which builds two tensors from NumPy rows for every item;
- ``InMemoryBatches``: the same batches sliced from tensors (test batches of 64 too);
- ``InMemoryBatches, full test``: as the objective runs a trial, the test set in one batch.

Reported: the median wall time, and the median CPU time of this process, which other jobs on
a shared machine disturb less. One torch thread by default: a lab-sized trial gains nothing
from intra-op threads, and where other jobs share the cores, two threads waiting for each
other cost 20x (measured on a loaded 2-core machine).

Run:  .venv/bin/python benchmarks/bench_batching.py [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from hpo.data import InMemoryBatches, LabData, RegressionData, RegressionDataset, train_test_split
from hpo.train.loop import train
from hpo.train.models import ModelSpec, build_model

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
Feed = Callable[[RegressionData, RegressionData], tuple[Batches, Batches]]
EPOCHS, BATCH_SIZE = 50, 64


def data_loader(train_data: RegressionData, test_data: RegressionData) -> tuple[Batches, Batches]:
    generator = torch.Generator().manual_seed(0)
    shuffled = DataLoader(
        RegressionDataset(train_data), batch_size=BATCH_SIZE, shuffle=True, generator=generator
    )
    return shuffled, DataLoader(RegressionDataset(test_data), batch_size=BATCH_SIZE)


class LabDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """The lab's ``Simple1DRegressionDataset``: NumPy arrays, a new tensor per item."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x.reshape(len(x), -1), y.reshape(-1, 1)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.tensor(self.x[index, :], dtype=torch.float32)
        return x, torch.tensor(self.y[index], dtype=torch.float32)

    def __len__(self) -> int:
        return self.x.shape[0]


def lab_data_loader(
    train_data: RegressionData, test_data: RegressionData
) -> tuple[Batches, Batches]:
    generator = torch.Generator().manual_seed(0)
    train_set, test_set = (LabDataset(data.x, data.y) for data in (train_data, test_data))
    shuffled = DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True, generator=generator)
    return shuffled, DataLoader(test_set, batch_size=BATCH_SIZE)


def in_memory(train_data: RegressionData, test_data: RegressionData) -> tuple[Batches, Batches]:
    shuffled = InMemoryBatches.from_data(train_data, batch_size=BATCH_SIZE, seed=0)
    return shuffled, InMemoryBatches.from_data(test_data, batch_size=BATCH_SIZE, shuffle=False)


def in_memory_full_test(
    train_data: RegressionData, test_data: RegressionData
) -> tuple[Batches, Batches]:
    shuffled = InMemoryBatches.from_data(train_data, batch_size=BATCH_SIZE, seed=0)
    return shuffled, InMemoryBatches.from_data(test_data, batch_size=None, shuffle=False)


FEEDS: dict[str, Feed] = {
    "DataLoader": data_loader,
    "DataLoader, lab's Dataset": lab_data_loader,
    "InMemoryBatches": in_memory,
    "InMemoryBatches, full test": in_memory_full_test,
}


def lab_trial(feed: Feed, train_data: RegressionData, test_data: RegressionData) -> float:
    """Train once; returns the final test R²."""
    model = build_model(ModelSpec(hidden=(20, 20), activation="tanh"), seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
    train_batches, test_batches = feed(train_data, test_data)
    result = train(
        model,
        train_batches,
        test_batches=test_batches,
        epochs=EPOCHS,
        optimizer=optimizer,
        scheduler=scheduler,
    )
    return float(result.history["test_r2"].iloc[-1])


def timed(feed: Feed, train_data: RegressionData, test_data: RegressionData) -> list[float]:
    """[wall seconds, CPU seconds, final test R²] of one trial."""
    wall, cpu = time.perf_counter(), time.process_time()
    r2 = lab_trial(feed, train_data, test_data)
    return [time.perf_counter() - wall, time.process_time() - cpu, r2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="trials per feed (median kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train_data, test_data = train_test_split(LabData(n=1000, seed=0).load(), 0.3, seed=0)
    for feed in FEEDS.values():  # warm-up: first calls pay for lazy initialization
        timed(feed, train_data, test_data)
    runs: dict[str, list[list[float]]] = {name: [] for name in FEEDS}
    for _ in range(args.repeats):  # alternate, so a load change on the machine hits all alike
        for name, feed in FEEDS.items():
            runs[name].append(timed(feed, train_data, test_data))
    medians = {
        name: [statistics.median(column) for column in zip(*rows, strict=True)]
        for name, rows in runs.items()
    }
    print(
        f"lab trial: {len(train_data)} train / {len(test_data)} test points, batch {BATCH_SIZE}, "
        f"{EPOCHS} epochs, Adam + cosine; torch threads {torch.get_num_threads()}; "
        f"median of {args.repeats}"
    )
    for name, (wall, cpu, r2) in medians.items():
        print(f"  {name:<27} {wall:6.3f} s wall {cpu:6.3f} s CPU   test R² {r2:.4f}")
    for base in ("DataLoader", "DataLoader, lab's Dataset"):
        for name in ("InMemoryBatches", "InMemoryBatches, full test"):
            wall = medians[base][0] / medians[name][0]
            cpu = medians[base][1] / medians[name][1]
            print(f"  speed-up of {name} over {base}: {wall:.2f}x wall, {cpu:.2f}x CPU")


if __name__ == "__main__":
    main()
