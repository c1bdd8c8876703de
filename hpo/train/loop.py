"""The lab's train/test loop: train and test every epoch, one history row per epoch.

Example:
    >>> from hpo.data import InMemoryBatches, LabData, train_test_split
    >>> from hpo.train.models import ModelSpec, build_model
    >>> train_data, test_data = train_test_split(LabData().load())
    >>> model = build_model(ModelSpec(hidden=(20, 20)), seed=0)
    >>> optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    >>> result = train(
    ...     model,
    ...     InMemoryBatches.from_data(train_data, batch_size=64),
    ...     test_batches=InMemoryBatches.from_data(test_data, shuffle=False),
    ...     epochs=50,
    ...     optimizer=optimizer,
    ...     scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=50),
    ... )
    >>> len(result.history), bool(result.history["test_r2"].iloc[-1] > 0.9)
    (50, True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from hpo.data import Fold, InMemoryBatches
from hpo.errors import ConfigError, DataError
from hpo.train.metrics import DEFAULT_SCORES, ScoreFn, mse_and_r2
from hpo.train.models import ModelSpec, build_model, model_spec
from hpo.train.progress import Bar
from hpo.train.rules import diverged_message, divergence, step_schedule
from search_spaces import build_optimizer, build_scheduler
from search_spaces.values import is_int

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
"""Anything re-iterable once per epoch that yields ``(x, y)``: a DataLoader, InMemoryBatches."""
Callback = Callable[[int, dict[str, float]], "bool | None"]
"""``callback(epoch, row)``; returning True stops training, raising stops it too (pruning)."""



@dataclass
class TrainResult:
    """What `train` returns.

    ``history`` has one row per finished epoch: ``epoch`` (from 1), ``lr`` (used during the
    epoch), ``seconds`` (cumulative), ``train_loss``, ``test_loss``, then ``train_<score>``,
    ``test_<score>`` for each score (no test columns when training only). ``stopped`` is None
    when every epoch ran, ``"diverged"`` or ``"callback"``; ``message`` says what happened.
    """

    history: pd.DataFrame
    stopped: str | None = None
    message: str = ""

    @property
    def diverged(self) -> bool:
        """True when a non-finite loss stopped training."""
        return self.stopped == "diverged"

    @property
    def epochs_run(self) -> int:
        """The number of finished epochs (rows of ``history``)."""
        return len(self.history)


def train(
    model: nn.Module,
    train_batches: Batches,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    test_batches: Batches | None = None,
    scores: Mapping[str, ScoreFn] | None = None,
    device: str | torch.device = "cpu",
    callback: Callback | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train ``model`` for ``epochs``, testing after each epoch, as the lab's loop with scheduler.

    Each epoch: train on every batch, score the (detached) training predictions, evaluate
    ``test_batches`` in eval mode without gradients, step ``scheduler`` once (ReduceLROnPlateau
    gets the test loss, or the train loss without test batches), then call ``callback``.
    Defaults follow the lab: SGD with lr 0.01, MSE loss, the MSE and R² scores.
    A non-finite loss stops training at once, without adding that epoch's row.

    See the module's example.
    """
    if not is_int(epochs) or epochs < 1:
        raise ConfigError(f"`epochs >= 1` must hold, but got {epochs=!r}; pass e.g. epochs=50.")
    model.to(device)
    if optimizer is None:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scores = DEFAULT_SCORES if scores is None else scores
    if loss_fn is None:
        loss_fn = nn.MSELoss()
    loop = _Loop(model, optimizer, loss_fn, scores, torch.device(device))
    columns = _columns(scores, with_test=test_batches is not None)
    rows: list[dict[str, float]] = []
    stopped, message, seconds = None, f"completed {epochs} epochs", 0.0
    # A context manager, so the bar closes when a callback raises (a pruned trial).
    # Bar: tqdm without its monitor thread, which even a disabled bar starts and which
    # outlives it (hpo.train.progress).
    with Bar(range(1, epochs + 1), desc="epochs", disable=not progress, leave=False) as bar:
        for epoch in bar:
            start = time.perf_counter()
            row = loop.epoch(epoch, train_batches, test_batches)
            problem = divergence(row["train_loss"], row.get("test_loss"))
            if problem:
                stopped, message = "diverged", diverged_message(epoch, problem)
                break
            step_schedule(scheduler, row.get("test_loss", row["train_loss"]))
            seconds += time.perf_counter() - start
            row["seconds"] = seconds
            rows.append({column: row[column] for column in columns})
            bar.set_postfix(_postfix(rows[-1]), refresh=False)
            if callback is not None and callback(epoch, dict(rows[-1])):
                stopped, message = "callback", f"stopped by callback at epoch {epoch}"
                break
    return TrainResult(_history(rows, columns), stopped, message)


class _Loop:
    """One pass over a set of batches, training or evaluating, with its loss and scores."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        scores: Mapping[str, ScoreFn],
        device: torch.device,
    ) -> None:
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scores, self.device = scores, device

    def epoch(self, epoch: int, train: Batches, test: Batches | None) -> dict[str, float]:
        """The epoch's row: lr used, train loss and scores, then test loss and scores."""
        lr = float(self.optimizer.param_groups[0]["lr"])
        row: dict[str, float] = {"epoch": epoch, "lr": lr}
        row.update(self.run(train, "train"))
        if test is not None and math.isfinite(row["train_loss"]):
            row.update(self.run(test, "test"))
        return row

    def run(self, batches: Batches, part: str) -> dict[str, float]:
        """``{part}_loss`` and ``{part}_<score>`` of one pass; ``part`` is train or test."""
        training = part == "train"
        self.model.train(training)
        with torch.set_grad_enabled(training):
            losses, sizes, preds, targets = self._pass(batches, training)
        if not sizes:
            raise DataError(f"the {part} batches are empty, expected at least one; check the data.")
        row = {f"{part}_loss": _weighted_mean(losses, sizes)}
        if math.isfinite(row[f"{part}_loss"]):
            # One batch (full-batch training, the test part): no copy into a new tensor.
            y_true = targets[0] if len(targets) == 1 else torch.cat(targets)
            y_pred = preds[0] if len(preds) == 1 else torch.cat(preds)
            if self.scores is DEFAULT_SCORES:  # both at once: one copy to the host
                row[f"{part}_mse"], row[f"{part}_r2"] = mse_and_r2(y_true, y_pred)
            else:
                row.update({f"{part}_{name}": fn(y_true, y_pred)
                            for name, fn in self.scores.items()})
        return row

    def _pass(
        self, batches: Batches, training: bool
    ) -> tuple[list[torch.Tensor], list[int], list[torch.Tensor], list[torch.Tensor]]:
        # Losses stay tensors until the epoch ends: one sync per epoch, not one per batch.
        losses: list[torch.Tensor] = []
        sizes: list[int] = []
        preds: list[torch.Tensor] = []
        targets: list[torch.Tensor] = []
        for xb, yb in batches:
            if xb.device != self.device:  # in-memory batches usually live there already
                xb, yb = xb.to(self.device), yb.to(self.device)
            out = self.model(xb)  # (batch, out_features)
            loss = self.loss_fn(out, yb)
            if training:
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
            losses.append(loss.detach())
            sizes.append(xb.shape[0])
            preds.append(out.detach())
            targets.append(yb)
        return losses, sizes, preds, targets


def _weighted_mean(losses: list[torch.Tensor], sizes: list[int]) -> float:
    # Each batch's loss is a mean over its rows; weighting by rows gives the epoch's mean.
    stacked = torch.stack(losses).double()
    weights = torch.tensor(sizes, dtype=torch.float64, device=stacked.device)
    return float(torch.dot(stacked, weights)) / sum(sizes)


def _history(rows: list[dict[str, float]], columns: list[str]) -> pd.DataFrame:
    # Typed even when empty (diverged in epoch 1), so callers can filter and plot it alike.
    dtypes = {column: "int64" if column == "epoch" else "float64" for column in columns}
    return pd.DataFrame(rows, columns=columns).astype(dtypes)


def _columns(scores: Mapping[str, ScoreFn], with_test: bool) -> list[str]:
    parts = ("train", "test") if with_test else ("train",)
    columns = ["epoch", "lr", "seconds", *(f"{part}_loss" for part in parts)]
    return columns + [f"{part}_{name}" for name in scores for part in parts]


def _postfix(row: Mapping[str, float]) -> dict[str, str]:
    keys = [key for key in ("test_r2", "test_loss", "train_loss") if key in row][:2]
    return {key: f"{row[key]:.4g}" for key in keys}




def train_params(
    params: Mapping[str, Any],
    fold: Fold,
    *,
    seed: int = 0,
    device: str = "cpu",
    callback: Callback | None = None,
) -> tuple[nn.Module, ModelSpec, TrainResult]:
    """The lab's loop on a trial's params, one model: what the engine (`hpo.train.objective`)
    is held to in float64 (tests/test_population.py) and what the benchmarks time as the
    one-at-a-time path. Initial weights and data order are drawn from ``seed``."""
    torch.manual_seed(seed)  # the model's initial weights
    spec = model_spec(params, fold.train.x.shape[1])
    model = build_model(spec).to(device)
    optimizer = build_optimizer(params, model.parameters())
    epochs = int(params["epochs"])
    scheduler = build_scheduler(optimizer, params, epochs=epochs)
    x_train, y_train = fold.train.tensors(device)
    batch_size = None if params["batch_size"] == "full" else int(params["batch_size"])
    batches = InMemoryBatches(x_train, y_train, batch_size=batch_size, shuffle=True, seed=seed)
    x_test, y_test = fold.test.tensors(device)
    test = InMemoryBatches(x_test, y_test, batch_size=None, shuffle=False)
    result = train(model, batches, epochs=epochs, optimizer=optimizer, scheduler=scheduler,
                   test_batches=test, device=device, callback=callback)
    return model, spec, result
