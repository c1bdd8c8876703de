"""Many small networks trained as one batched computation: a population.

Every model of a population has the same layer shapes, activation, batch norm, batch size
and epochs; anything else may differ per model: initial weights and data order (each from
the model's own seed, drawn exactly as the one-at-a-time path draws them), learning rate and
its schedule, optimizer and its knobs, weight decay, dropout rate. Weights are stacked along
a leading model axis, ``(models, in, out)``, and each layer is one ``baddbmm``; the optimizers
are written out on the stacked tensors with one value per model (torch's own formulas), so
one Python step trains every model. ``benchmarks/bench_population.py`` measures this against
``torch.func.stack_module_state`` + ``vmap`` (slower here: see benchmarks/README.md).

Learning rates come from each model's real torch scheduler, built by
``search_spaces.build_scheduler`` on a stand-in optimizer and stepped as the loop steps it,
so the lr of every epoch is the one the one-at-a-time path uses, plateau included.

Example:
    >>> members = train_population([params_a, params_b], fold, seeds=[0, 1])  # doctest: +SKIP
    >>> members[0].rows[-1]["test_r2"]                                       # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from hpo.data import Fold
from hpo.train.models import ModelSpec, build_model, count_parameters
from hpo.train.optimizers import StackedOptimizer
from hpo.train.schedules import Schedules
from search_spaces import ACTIVATIONS

EpochCallback = Callable[[int, Mapping[int, dict[str, float]]], "set[int] | None"]
"""``callback(epoch, {member index: row})`` for the members still training; returns the
indices to stop (pruned). It may raise to stop the whole population."""

_BN_EPS, _BN_MOMENTUM = 1e-5, 0.1  # nn.BatchNorm1d's defaults


@dataclass
class Member:
    """One model of a population and how its training went (as a `TrainResult` says it).

    ``rows`` has one dict per finished epoch with the columns of `train`'s history;
    ``stopped`` is None, ``"diverged"`` or ``"callback"``; ``seconds`` is the model's share of
    the population's wall time (each epoch's time divided by the models it trained).
    """

    index: int
    params: Mapping[str, Any]
    seed: int
    n_params: int = 0
    rows: list[dict[str, float]] = field(default_factory=list)
    stopped: str | None = None
    message: str = ""
    seconds: float = 0.0


def group_key(params: Mapping[str, Any], in_features: int) -> tuple[Any, ...]:
    """Models with the same key can train as one population."""
    spec = population_spec(params, in_features)
    return (spec.in_features, spec.hidden, spec.activation, spec.batch_norm,
            str(params["batch_size"]), int(params["epochs"]))


def batches_exactly(params: Mapping[str, Any]) -> bool:
    """Whether a population reproduces this model's one-at-a-time R² to about 1e-7.

    Not with batch norm: the bias before it has a zero true gradient, so its updates are
    rounding noise (blown up to whole steps by Adam-like optimizers), and batched float32
    rounding differs from one model's; measured 1e-5 (SGD) to 1e-2 (Adam) in R².
    """
    return not (int(params["hidden_layers"]) > 0 and bool(params.get("batch_norm")))


def population_spec(params: Mapping[str, Any], in_features: int) -> ModelSpec:
    """The network of ``params`` (as `hpo.train.objective.model_spec` reads it)."""
    layers = int(params["hidden_layers"])
    if layers == 0:
        return ModelSpec(in_features=in_features)
    return ModelSpec(in_features=in_features, hidden=(int(params["width"]),) * layers,
                     activation=str(params["activation"]),
                     batch_norm=bool(params.get("batch_norm", False)),
                     dropout=float(params.get("dropout") or 0.0))


def folds_train_together(params: Mapping[str, Any], folds: Sequence[Fold]) -> bool:
    """Whether a population may train models of different folds side by side.

    Only full-batch training without batch norm: a fold's rows are then one batch, padded to
    the largest fold's and masked out of the loss and scores (the folds of k-fold CV differ
    by a row). Mini-batches would need each fold's own batch boundaries, and batch norm's
    statistics would see the padding.
    """
    if len(folds) < 2 or (int(params["hidden_layers"]) > 0 and bool(params.get("batch_norm"))):
        return False
    size = params["batch_size"]
    return size == "full" or all(int(size) >= len(fold.train) for fold in folds)


def train_population(
    params: Sequence[Mapping[str, Any]],
    fold: Fold | Sequence[Fold],
    seeds: Sequence[int],
    *,
    device: str | torch.device = "cpu",
    callback: EpochCallback | None = None,
    every_epoch: bool = True,
) -> list[Member]:
    """Train every params dict of one group on ``fold`` at once; score on ``fold.test``.

    ``fold`` may instead be one fold per params dict (k-fold CV as one more batch axis), if
    `folds_train_together` allows it.

    Each epoch is the one-at-a-time loop's: train on every batch, score the training
    predictions, test in eval mode, step each schedule (plateau with its test loss), then
    ``callback``. A model whose loss turns non-finite stops alone (``stopped="diverged"``).
    Weights and data order equal the one-at-a-time path's; dropout masks do not (they are
    drawn for the whole population at once).

    ``every_epoch=False`` keeps only the last epoch's row (a k-fold score that reads only the
    final epoch): the other epochs compute the losses (divergence, plateau) but no scores,
    and copy nothing to the host unless a loss is non-finite or a schedule is a plateau;
    ``callback`` then gets no rows.
    """
    torch.manual_seed(seeds[0])  # dropout masks: the same population draws the same masks
    population = _Population(params, fold, seeds, torch.device(device), every_epoch)
    epochs = int(params[0]["epochs"])
    for epoch in range(1, epochs + 1):
        if not population.alive:
            break
        population.epoch(epoch, callback)
    return population.members


class _Population:
    """The stacked weights, optimizer state, schedules and data of the models still training."""

    def __init__(self, params: Sequence[Mapping[str, Any]], fold: Fold | Sequence[Fold],
                 seeds: Sequence[int], device: torch.device, every_epoch: bool = True) -> None:
        folds = [fold] * len(params) if isinstance(fold, Fold) else list(fold)
        fold = folds[0]
        in_features = fold.train.x.shape[1]
        keys = {group_key(p, in_features) for p in params}
        if len(keys) != 1:
            raise ValueError(f"A population needs one group key, but got {sorted(map(str, keys))}.")
        self.device = device
        self.spec = population_spec(params[0], in_features)
        # The layer a one-at-a-time model uses (elementwise: it acts on stacked models alike).
        self.activation = ACTIVATIONS[self.spec.activation]()
        self.members = [Member(i, p, s) for i, (p, s) in enumerate(zip(params, seeds, strict=True))]
        self.alive = list(range(len(params)))  # member indices, in the order of the model axis
        weights, self.buffers = _stack_models(self.spec, self.members, device)
        # All of a model's weights in one row of one tensor, (models, all weights): the
        # optimizer then runs its dozen element-wise ops once per step, not once per layer
        # tensor (measured: most of a population step's time was those small ops).
        self.shapes = [w.shape[1:] for w in weights]
        self.sizes = [w[0].numel() for w in weights]
        self.flat = torch.cat([w.detach().reshape(len(w), -1) for w in weights], 1).requires_grad_()
        self.weights: list[torch.Tensor] = []  # views of flat, made by each forward pass
        self.optimizer = StackedOptimizer([self.flat], params, device)
        self.schedules = Schedules(params, epochs=int(params[0]["epochs"]))
        self.dropout = torch.tensor([float(p.get("dropout") or 0.0) for p in params],
                                    dtype=self.flat.dtype, device=device).view(-1, 1, 1)
        self.any_dropout = bool(self.dropout.any())
        parts = list({id(f): f for f in folds}.values())
        # Several folds: (folds, most rows, ...) padded data, and each model's fold index.
        self.part: torch.Tensor | None = None
        if len(parts) == 1:
            self.x, self.y = fold.train.tensors(device)
            self.x_test, self.y_test = fold.test.tensors(device)
        else:
            if not folds_train_together(params[0], parts):
                raise ValueError("Models of different folds train together only full-batch "
                                 "and without batch norm (folds_train_together).")
            self.x, self.y, self.mask = _padded([f.train for f in parts], device)
            self.x_test, self.y_test, self.mask_test = _padded([f.test for f in parts], device)
            where = {id(f): i for i, f in enumerate(parts)}
            self.part = torch.tensor([where[id(f)] for f in folds], device=device)
        size = params[0]["batch_size"]
        self.batch_size = self.x.shape[-2] if size == "full" else int(size)
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.every_epoch, self.epochs = every_epoch, int(params[0]["epochs"])
        self.lrs: list[float] = []

    def epoch(self, epoch: int, callback: EpochCallback | None) -> None:
        start = time.perf_counter()
        lrs = self.schedules.lrs(self.alive)
        if lrs != self.lrs:  # constant schedules: one copy to the device, not one per epoch
            self.optimizer.set_lr(torch.tensor(lrs, dtype=torch.float64, device=self.device))
            self.lrs = lrs
        scored = self.every_epoch or epoch == self.epochs
        train = self._train(scored)
        test = self._test(scored)
        rows = (_rows(epoch, self.alive, lrs, train, test) if scored
                else self._loss_rows(train["loss"], test["loss"]))
        stopped = self._stop_diverged(epoch, rows)
        self.schedules.step([m for m in self.alive if m not in stopped],
                            {m: r["test_loss"] for m, r in rows.items()})
        share = (time.perf_counter() - start) / len(self.alive)
        living = {m: r for m, r in rows.items() if m not in stopped}
        for member in self.alive:
            if member not in stopped:
                self.members[member].seconds += share
        if scored:
            for member, row in living.items():
                row["seconds"] = self.members[member].seconds
                self.members[member].rows.append(row)
        else:
            living = {}
        pruned = (callback(epoch, living) or set()) if callback else set()
        for member in pruned:
            self.members[member].stopped = "callback"
            self.members[member].message = f"stopped by callback at epoch {epoch}"
        self._drop(stopped | set(pruned))

    def _views(self) -> list[torch.Tensor]:
        """Each layer's weights, ``(models, ...)``: views of ``flat`` (gradients reach it)."""
        return [chunk.reshape(-1, *shape)
                for chunk, shape in zip(self.flat.split(self.sizes, 1), self.shapes, strict=True)]

    def _loss_rows(self, train: torch.Tensor, test: torch.Tensor) -> dict[int, dict[str, float]]:
        """Each model's losses, copied to the host only when something reads them."""
        losses = torch.stack([train, test])
        if not self.schedules.any_plateau and bool(torch.isfinite(losses).all()):
            return {}
        return {m: {"train_loss": a, "test_loss": b}
                for m, (a, b) in zip(self.alive, losses.T.tolist(), strict=True)}

    def _train(self, scored: bool = True) -> dict[str, torch.Tensor]:
        xs, ys = self._shuffled()  # (models, n, in), (models, n, out)
        losses, outs = [], []
        for xb, yb in zip(xs.split(self.batch_size, 1), ys.split(self.batch_size, 1),
                          strict=True):
            out = self._forward(xb, training=True)  # (models, batch, out)
            loss = self._mse(out, yb, self.mask if self.part is not None else None)
            self.optimizer.zero_grad()
            loss.sum().backward()  # models share no weight: each gets its own gradient
            self.optimizer.step()
            losses.append(loss.detach())
            outs.append(out.detach())
        if len(losses) == 1:  # one batch: its mean is the epoch's
            mask = self.mask[self.part] if self.part is not None else None
            return {"loss": losses[0].double(),
                    **(_scores(ys, outs[0], mask) if scored else {})}
        sizes = torch.tensor([b.shape[1] for b in outs], dtype=torch.float64, device=self.device)
        loss = (torch.stack(losses).double() * sizes[:, None]).sum(0) / sizes.sum()
        return {"loss": loss, **(_scores(ys, torch.cat(outs, dim=1)) if scored else {})}

    def _test(self, scored: bool = True) -> dict[str, torch.Tensor]:
        if self.part is not None:
            x, y = self.x_test[self.part], self.y_test[self.part]
            with torch.no_grad():
                out = self._forward(x, training=False)
            mask = self.mask_test[self.part]
            loss = self._mse(out, y, self.mask_test).double()  # float32 squares, as below
            return {"loss": loss, **(_scores(y, out, mask) if scored else {})}
        with torch.no_grad():
            out = self._forward(self.x_test.expand(len(self.alive), -1, -1), training=False)
        y = self.y_test.expand_as(out)
        loss = ((out - y) ** 2).double().mean(dim=(1, 2))
        return {"loss": loss, **(_scores(y, out) if scored else {})}

    def _mse(self, out: torch.Tensor, y: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
        """Each model's mean squared error over its own fold's rows: ``(models,)``."""
        if masks is None or self.part is None:
            return ((out - y) ** 2).mean(dim=(1, 2))
        mask = masks[self.part]  # (models, rows, 1): True on the model's fold's real rows
        squares = torch.where(mask, (out - y) ** 2, 0.0)
        return squares.sum(dim=(1, 2)) / (mask.sum(dim=(1, 2)) * out.shape[2])

    def _shuffled(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.part is not None:  # one full batch per fold: not shuffled
            return self.x[self.part], self.y[self.part]
        n = len(self.x)
        if self.batch_size >= n:  # one full batch is not shuffled, as InMemoryBatches does
            shape = (len(self.alive), -1, -1)
            return self.x.expand(*shape), self.y.expand(*shape)
        order = torch.stack([torch.randperm(n, generator=self.generators[m])
                             for m in self.alive]).to(self.device)  # (models, n)
        return self.x[order], self.y[order]

    def _forward(self, x: torch.Tensor, *, training: bool) -> torch.Tensor:
        self.weights = self._views()  # fresh views for this step's graph
        layers = _layer_slices(self.spec)
        for index, (w, b, bn) in enumerate(layers):
            x = torch.baddbmm(self.weights[b], x, self.weights[w])
            if index == len(layers) - 1:
                break
            if bn is not None:
                x = self._batch_norm(x, bn, training)
            x = self.activation(x)
            if training and self.any_dropout:
                keep = 1.0 - self.dropout
                x = x * (torch.rand_like(x) < keep) / keep
        return x

    def _batch_norm(self, x: torch.Tensor, layer: tuple[int, int, int],
                    training: bool) -> torch.Tensor:
        weight, bias, stats = self.weights[layer[0]], self.weights[layer[1]], layer[2]
        mean_buf, var_buf = self.buffers[stats], self.buffers[stats + 1]
        if training:
            mean = x.mean(dim=1, keepdim=True)  # (models, 1, width)
            var = x.var(dim=1, unbiased=False, keepdim=True)
            with torch.no_grad():
                n = x.shape[1]
                mean_buf.lerp_(mean, _BN_MOMENTUM)
                var_buf.lerp_(var * n / max(n - 1, 1), _BN_MOMENTUM)
        else:
            mean, var = mean_buf, var_buf
        return (x - mean) / torch.sqrt(var + _BN_EPS) * weight + bias

    def _stop_diverged(self, epoch: int, rows: dict[int, dict[str, float]]) -> set[int]:
        stopped = set()
        for member, row in rows.items():
            for key, what in (("train_loss", "training loss"), ("test_loss", "test loss")):
                if not math.isfinite(row[key]):
                    self.members[member].stopped = "diverged"
                    self.members[member].message = (
                        f"diverged at epoch {epoch}: {what} is {row[key]}")
                    stopped.add(member)
                    break
        return stopped

    def _drop(self, members: set[int]) -> None:
        if not members:
            return
        keep = [i for i, m in enumerate(self.alive) if m not in members]
        index = torch.tensor(keep, device=self.device)
        self.alive = [self.alive[i] for i in keep]
        if not self.alive:
            return
        self.flat = self.flat.detach()[index].requires_grad_()
        self.buffers = [b[index] for b in self.buffers]
        self.optimizer.keep(index, [self.flat])
        if self.part is not None:
            self.part = self.part[index]
        self.dropout = self.dropout[index]


def _layer_slices(spec: ModelSpec) -> list[tuple[int, int, tuple[int, int, int] | None]]:
    """Per linear layer: index of its weight, of its bias, and its batch norm's indices."""
    slices: list[tuple[int, int, tuple[int, int, int] | None]] = []
    position, stats = 0, 0
    for _ in spec.hidden:
        bn = (position + 2, position + 3, stats) if spec.batch_norm else None
        slices.append((position, position + 1, bn))
        position += 4 if spec.batch_norm else 2
        stats += 2 if spec.batch_norm else 0
    slices.append((position, position + 1, None))
    return slices


def _stack_models(spec: ModelSpec, members: list[Member],
                  device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each model built from its seed as the one-at-a-time path builds it, then stacked."""
    per_model: list[list[torch.Tensor]] = []
    buffers: list[list[torch.Tensor]] = []
    for member in members:
        model = build_model(spec, seed=member.seed)
        member.n_params = count_parameters(model)
        tensors, stats = [], []
        for module in model.modules():
            if isinstance(module, nn.Linear):
                tensors += [module.weight.detach().T, module.bias.detach().view(1, -1)]
            elif isinstance(module, nn.BatchNorm1d):
                tensors += [module.weight.detach().view(1, -1), module.bias.detach().view(1, -1)]
                stats += [torch.as_tensor(module.running_mean).view(1, -1),
                          torch.as_tensor(module.running_var).view(1, -1)]
        per_model.append(tensors)
        buffers.append(stats)
    weights = [torch.stack(ts).to(device).contiguous().requires_grad_()
               for ts in zip(*per_model, strict=True)]
    stacked = [torch.stack(bs).to(device).contiguous() for bs in zip(*buffers, strict=True)]
    return weights, stacked


def _scores(y: torch.Tensor, out: torch.Tensor,
            mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """MSE and R² per model, in float64 as `hpo.train.metrics` computes them; with ``mask``
    (``(models, rows, 1)``) over each model's real rows only."""
    true, pred = y.reshape(len(y), -1).double(), out.detach().reshape(len(out), -1).double()
    if mask is None:
        residual = ((true - pred) ** 2).sum(1)
        total = ((true - true.mean(1, keepdim=True)) ** 2).sum(1)
        count = torch.full_like(residual, true.shape[1])
    else:
        real = mask.expand(*out.shape).reshape(len(out), -1)
        count = real.sum(1).double()
        residual = torch.where(real, (true - pred) ** 2, 0.0).sum(1)
        mean = torch.where(real, true, 0.0).sum(1, keepdim=True) / count[:, None]
        total = torch.where(real, (true - mean) ** 2, 0.0).sum(1)
    r2 = torch.where(total == 0, (residual == 0).double(), 1.0 - residual / total)
    return {"mse": residual / count, "r2": r2}


def _padded(parts: Sequence[Any], device: torch.device
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


def _rows(epoch: int, members: list[int], lrs: list[float], train: dict[str, torch.Tensor],
          test: dict[str, torch.Tensor]) -> dict[int, dict[str, float]]:
    # One copy to the host per epoch; then plain floats, in `train`'s column order (the
    # epoch a float too, as the one-at-a-time path stores its history rows).
    values = torch.stack([train["loss"], test["loss"], train["mse"], test["mse"],
                          train["r2"], test["r2"]]).T.tolist()
    return {i: {"epoch": float(epoch), "lr": lr, "seconds": 0.0, "train_loss": v[0],
                "test_loss": v[1], "train_mse": v[2], "test_mse": v[3], "train_r2": v[4],
                "test_r2": v[5]}
            for i, lr, v in zip(members, lrs, values, strict=True)}
