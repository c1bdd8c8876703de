"""A population's data: one fold, or several padded to the most rows, on the device, and
each model's rows in its epoch's order (helpers of `hpo.train.batched`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from hpo.data import Fold

if TYPE_CHECKING:
    from hpo.train.batched import Population


def group_key(params: Mapping[str, Any], in_features: int) -> tuple[Any, ...]:
    """Models with the same key can train as one population: what they must share."""
    return (in_features, str(params["batch_size"]))


def folds_train_together(params: Mapping[str, Any], folds: Sequence[Fold]) -> bool:
    """Whether a population may train models of different folds side by side.

    When every fold's training rows make the same number of batches: each fold is padded to
    the largest fold's rows, which a mask keeps out of the loss, batch norm's statistics
    and the scores, and the padding falls in the last batch only (the folds of k-fold CV
    differ by a row), so every model steps exactly as often as alone.
    """
    if len(folds) < 2:
        return False
    if params["batch_size"] == "full":
        return True
    return len({math.ceil(len(fold.train) / int(params["batch_size"])) for fold in folds}) == 1


@dataclass
class PopulationData:
    """A population's rows on the device: ``x``, ``y`` to train on and ``x_test``,
    ``y_test`` to score, one fold's, or several folds' padded to the most rows
    ``(folds, rows, ...)`` with their real rows in ``mask``, ``mask_test``, each fold's
    training rows in ``lengths``, and each model's fold in ``part`` (None: one fold)."""

    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    batch_size: int
    part: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    mask_test: torch.Tensor | None = None
    lengths: list[int] = field(default_factory=list)


def load(folds: list[Fold], params: Mapping[str, Any], device: torch.device) -> PopulationData:
    """The data of models trained on ``folds`` (one per model) with ``params``' batch size."""
    parts = list({id(f): f for f in folds}.values())
    size = params["batch_size"]
    if len(parts) == 1:
        x, y = parts[0].train.tensors(device)
        x_test, y_test = parts[0].test.tensors(device)
        return PopulationData(x, y, x_test, y_test, len(x) if size == "full" else int(size))
    if not folds_train_together(params, parts):
        raise ValueError("Models of different folds train together only when every "
                         "fold makes as many batches (folds_train_together).")
    x, y, mask = padded([f.train for f in parts], device)
    x_test, y_test, mask_test = padded([f.test for f in parts], device)
    where = {id(f): i for i, f in enumerate(parts)}
    part = torch.tensor([where[id(f)] for f in folds], device=device)
    return PopulationData(x, y, x_test, y_test, x.shape[-2] if size == "full" else int(size),
                          part, mask, mask_test, [len(f.train) for f in parts])


def shuffled(pop: Population) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Each model's training rows in its epoch's order, and (several folds) which are
    real: ``(models, rows, ...)``."""
    n = pop.x.shape[-2]
    if pop.part is not None and pop.mask is not None:  # several folds: both or neither
        real = pop.mask[pop.part]
        if pop.batch_size >= n:  # one full batch per fold: not shuffled
            return pop.x[pop.part], pop.y[pop.part], real
        # Each model shuffles its own fold's rows as alone; the padding stays last.
        parts = pop.part.tolist()
        order = torch.stack([
            torch.cat([torch.randperm(pop.lengths[p], generator=pop.generators[m]),
                       torch.arange(pop.lengths[p], n)])
            for m, p in zip(pop.alive, parts, strict=True)]).to(pop.device)
        part = pop.part[:, None]
        return pop.x[part, order], pop.y[part, order], pop.mask[part, order]
    if pop.batch_size >= n:  # one full batch is not shuffled, as InMemoryBatches does
        shape = (len(pop.alive), -1, -1)
        return pop.x.expand(*shape), pop.y.expand(*shape), None
    order = torch.stack([torch.randperm(n, generator=pop.generators[m])
                         for m in pop.alive]).to(pop.device)  # (models, n)
    return pop.x[order], pop.y[order], None


def padded(parts: Sequence[Any], device: torch.device
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each part's x and y, zero-padded to the most rows: ``(parts, rows, ...)``, and the
    mask of real rows, ``(parts, rows, 1)``."""
    tensors = [part.tensors(device) for part in parts]
    rows = max(len(x) for x, _ in tensors)
    x = torch.zeros(len(parts), rows, tensors[0][0].shape[1], dtype=tensors[0][0].dtype,
                    device=device)
    y = torch.zeros(len(parts), rows, tensors[0][1].shape[1], dtype=tensors[0][1].dtype,
                    device=device)
    mask = torch.zeros(len(parts), rows, 1, dtype=torch.bool, device=device)
    for i, (xi, yi) in enumerate(tensors):
        x[i, :len(xi)], y[i, :len(yi)], mask[i, :len(xi)] = xi, yi, True
    return x, y, mask
