"""Many small networks trained as one batched computation: a population, the one engine
every training goes through (docs/architecture.md, "One engine").

The models of a population share their data (one fold, or one fold each: k-fold CV as one
more batch axis), input features and batch size; anything else may differ per model: depth,
width, activation, batch norm, dropout (`hpo.train._stacked` pads every model to the widest
and deepest and masks it back to itself), epochs, initial weights and data order (drawn as
the course's loop draws them), learning rate and its schedule (each model's own torch
scheduler on a stand-in optimizer, `hpo.train.schedules`), optimizer and its knobs. Weights
are stacked along a leading model axis and each layer is one ``baddbmm``
(`hpo.train._forward`); the optimizers are written out on the stacked tensors with one
value per model, so one Python step trains every model. A plain stack steps with its
gradients written out, autograd's bit for bit (`hpo.train._backprop`). Models may join a
training population (`Population.admit`) at their own epoch 1.
``benchmarks/bench_population.py`` measures this against ``torch.func.stack_module_state``
+ ``vmap`` (slower here: see benchmarks/README.md).

Example:
    >>> members = train_population([params_a, params_b], fold, seeds=[0, 1])  # doctest: +SKIP
    >>> members[0].rows[-1]["test_r2"]                                       # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from hpo.data import Fold
from hpo.train._backprop import DERIVATIVES, Activation, Derivative, mse_step
from hpo.train._data import folds_train_together as folds_train_together
from hpo.train._data import group_key, load, shuffled
from hpo.train._forward import forward, mse
from hpo.train._scores import rows as _rows
from hpo.train._stacked import Layout, Member, stack
from hpo.train.metrics import scores
from hpo.train.models import model_spec
from hpo.train.optimizers import StackedOptimizer
from hpo.train.rules import diverged_message, divergence
from hpo.train.schedules import Schedules
from search_spaces import ACTIVATIONS

EpochCallback = Callable[[int, Mapping[int, dict[str, float]]], "set[int] | None"]
"""``callback(epoch, {member index: row})`` for the members still training; returns the
indices to stop (pruned). It may raise to stop the whole population. ``epoch`` counts the
population's epochs; each row's ``"epoch"`` is its model's own (models that joined later,
`Population.admit`, are behind)."""



def train_population(
    params: Sequence[Mapping[str, Any]],
    fold: Fold | Sequence[Fold],
    seeds: Sequence[int],
    *,
    device: str | torch.device = "cpu",
    callback: EpochCallback | None = None,
    every_epoch: bool = True,
    after_epoch: Callable[[Population], None] | None = None,
    layout: Layout | None = None,
    keep_weights: bool = False,
) -> list[Member]:
    """Train every params dict of one group on ``fold`` at once; score on ``fold.test``.

    ``fold`` may instead be one fold per params dict (k-fold CV as one more batch axis), if
    `folds_train_together` allows it.

    Each epoch is the one-at-a-time loop's: train on every batch, score the training
    predictions, test in eval mode, step each schedule (plateau with its test loss), then
    ``callback``. A model whose loss turns non-finite stops alone (``stopped="diverged"``);
    one whose own ``epochs`` are done leaves (``stopped=None``). Initial weights and data
    order equal the course loop's (`hpo.train.loop`); dropout masks come from each model's
    own generator, so a model draws the same masks in any population.

    ``every_epoch=False`` keeps only each model's last epoch's row (a k-fold score that reads
    only the final epoch): the other epochs compute the losses (divergence, plateau) but no
    scores, and copy nothing to the host unless a loss is non-finite or a schedule is a
    plateau; ``callback`` then gets no rows.

    ``after_epoch(population)`` runs after every epoch, once the models that stopped have
    left: it may `Population.admit` new models (a rolling population), which then train
    until their own epochs are done too. The returned members include them.

    ``layout`` pads the models to a given `Layout` (one that covers them) rather than to
    the smallest that fits: a model trained again in the layout it first trained in repeats
    its arithmetic to the bit (`hpo.train.engine.replay`). With ``keep_weights`` each member
    keeps its weights when it leaves (`Member.model`).
    """
    population = Population(params, fold, seeds, torch.device(device), every_epoch,
                            layout=layout, keep_weights=keep_weights)
    epoch = 0
    while population.alive:
        epoch += 1
        population.epoch(epoch, callback)
        if after_epoch is not None:
            after_epoch(population)
    return population.members


class Population:
    """The stacked weights, optimizer state, schedules and data of the models still training.

    Members are numbered in the order they came (``params``, then each `admit`); ``alive``
    lists the ones still training in the order of the model axis.
    """

    def __init__(self, params: Sequence[Mapping[str, Any]], fold: Fold | Sequence[Fold],
                 seeds: Sequence[int], device: torch.device, every_epoch: bool = True, *,
                 layout: Layout | None = None, keep_weights: bool = False) -> None:
        folds = [fold] * len(params) if isinstance(fold, Fold) else list(fold)
        in_features = folds[0].train.x.shape[1]
        keys = {group_key(p, in_features) for p in params}
        if len(keys) != 1:
            raise ValueError(f"A population needs one group key, but got {sorted(map(str, keys))}.")
        self.device, self.in_features, self.key = device, in_features, keys.pop()
        specs = [model_spec(p, in_features) for p in params]
        self.specs = specs  # every member's, by member index (the layout fits them all)
        # The model axis holds the models sorted by activation: each activation then runs
        # on its own contiguous block (measured: computing every activation present on
        # every model, then selecting, cost more than the rest of a mixed step).
        self.alive = sorted(range(len(params)), key=lambda m: specs[m].activation)
        axis = self.alive  # member indices, in the order of the model axis
        if layout is not None and not layout.covers(specs):
            raise ValueError(f"The layout {layout} does not cover the models {specs}.")
        self.layout = Layout.of(specs) if layout is None else layout
        self.keep_weights = keep_weights
        stacked = stack(self.layout, [specs[m] for m in axis], [seeds[m] for m in axis],
                        device)
        self.masks, self.buffers = stacked.masks, stacked.buffers
        # The layer a one-at-a-time model uses (elementwise: it acts on stacked models alike),
        # its forward called directly: a module's call checks for hooks first, twice a step.
        self.activations = {name: ACTIVATIONS[name]().forward
                            for name in stacked.masks.activations}
        n_params = dict(zip(axis, stacked.n_params, strict=True))
        self.members = [Member(i, p, s, n_params[i], spec=specs[i], layout=self.layout)
                        for i, (p, s) in enumerate(zip(params, seeds, strict=True))]
        self.epochs_of = [int(p["epochs"]) for p in params]
        # The population's epochs already done when each member joined (admit).
        self.offsets = [0] * len(params)
        self.epochs_done = 0
        # All of a model's weights in one row of one tensor, (models, all weights): the
        # optimizer then runs its dozen element-wise ops once per step, not once per layer
        # tensor (measured: most of a population step's time was those small ops).
        weights = stacked.weights
        self.shapes = [w.shape[1:] for w in weights]
        self.sizes = [w[0].numel() for w in weights]
        self._set_flat(torch.cat([w.detach().reshape(len(w), -1) for w in weights], 1))
        self.optimizer = StackedOptimizer([self.flat], [params[m] for m in axis], device)
        self.schedules = Schedules(params)  # indexed by member
        self.dropout = torch.tensor([float(params[m].get("dropout") or 0.0) for m in axis],
                                    dtype=self.flat.dtype, device=device).view(-1, 1, 1)
        folds = [folds[m] for m in axis]
        data = load(folds, params[0], device)
        self.x, self.y, self.x_test, self.y_test = data.x, data.y, data.x_test, data.y_test
        self.part, self.mask, self.mask_test = data.part, data.mask, data.mask_test
        self.lengths, self.batch_size = data.lengths, data.batch_size
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.dropout_generators = [self._dropout_generator(s) for s in seeds]
        self.every_epoch = every_epoch
        self.lrs: list[float] = []
        self._what_runs()

    def _what_runs(self) -> None:
        """Which masks the models still training need: none costs a step nothing."""
        masks = self.masks
        self.any_dropout = bool(self.dropout.any())
        self.any_bn = bool(masks.batch_norm.any())
        self.all_bn = bool(masks.batch_norm.all())
        # (activation, models): the model axis's blocks, in its order (sorted by name).
        self.blocks = [(name, int(mask.sum())) for name, mask in masks.activations.items()
                       if bool(mask.any())]
        self.present = [name for name, _ in self.blocks]
        # A padded unit starts with zero weights, so it stays exactly 0 (zero gradients)
        # wherever act(0) == 0, every activation of ACTIVATIONS: the mask costs two ops a
        # layer a step, so it runs only where some activation present maps 0 elsewhere.
        moves_zero = any(bool(self.activations[name](torch.zeros(1)) != 0)
                         for name in self.present)
        self.padded = [moves_zero and not bool(units.all()) for units in masks.units]
        self.passes = [not bool(deeper.all()) for deeper in masks.deeper]
        # A plain stack (one activation, no batch norm, dropout or shallower model) steps with
        # its gradients written out (hpo.train._backprop): a third of a step was autograd's.
        # Its activation and that activation's derivative; None: through autograd.
        self.plain: tuple[Activation, Derivative] | None = None
        if (not self.any_bn and not self.any_dropout and not any(self.padded)
                and not any(self.passes) and len(self.present) == 1
                and self.present[0] in DERIVATIVES):
            self.plain = self.activations[self.present[0]], DERIVATIVES[self.present[0]]

    def fits(self, params: Mapping[str, Any]) -> bool:
        """Whether a model of ``params`` can join (`admit`): the same group key, within the
        padded layout (no wider, deeper, nor batch norm where none has it), one fold
        scored every epoch."""
        if self.part is not None or not self.every_epoch:
            return False
        if group_key(params, self.in_features) != self.key:
            return False
        return self.layout.covers([*self.specs, model_spec(params, self.in_features)])

    def admit(self, params: Sequence[Mapping[str, Any]], seeds: Sequence[int]) -> list[int]:
        """Add models that `fits` allows; they start at their own epoch 1 with the next epoch,
        with the weights, data order and schedule they would have alone. Returns their
        member indices."""
        if not all(self.fits(p) for p in params):
            raise ValueError("Only models that fit a population can join it (Population.fits).")
        first = len(self.members)
        specs = [model_spec(p, self.in_features) for p in params]
        stacked = stack(self.layout, specs, seeds, self.device)
        new = list(range(first, first + len(params)))
        self.specs += specs
        self.members += [Member(i, p, s, n, spec=spec, layout=self.layout) for i, p, s, n, spec
                         in zip(new, params, seeds, stacked.n_params, specs, strict=True)]
        self.epochs_of += [int(p["epochs"]) for p in params]
        self.offsets += [self.epochs_done] * len(params)
        self.generators += [torch.Generator().manual_seed(s) for s in seeds]
        self.dropout_generators += [self._dropout_generator(s) for s in seeds]
        self.schedules.add(params)
        for name in stacked.masks.activations:
            self.activations.setdefault(name, ACTIVATIONS[name]().forward)
        rows = torch.cat([w.detach().reshape(len(w), -1) for w in stacked.weights], 1)
        self._set_flat(torch.cat([self.flat, rows]))
        self.buffers = [torch.cat([a, b]) for a, b in zip(self.buffers, stacked.buffers,
                                                          strict=True)]
        self.masks = self.masks.cat(stacked.masks)
        self.dropout = torch.cat([self.dropout, torch.tensor(
            [float(p.get("dropout") or 0.0) for p in params], dtype=self.flat.dtype,
            device=self.device).view(-1, 1, 1)])
        self.optimizer.admit(params, [self.flat])
        self.alive += new
        # The model axis stays sorted by activation: one block per activation (see __init__).
        order = sorted(range(len(self.alive)), key=lambda i: self.specs[self.alive[i]].activation)
        self._reindex(order)
        return new

    def epoch(self, epoch: int, callback: EpochCallback | None) -> None:
        start = time.perf_counter()
        self.epochs_done = epoch
        lrs = self.schedules.lrs(self.alive)
        if lrs != self.lrs:  # constant schedules: one copy to the device, not one per epoch
            self.optimizer.set_lr(lrs)
            self.lrs = lrs
        own = {m: epoch - self.offsets[m] for m in self.alive}  # each model's own epoch
        ending = {m for m in self.alive if self.epochs_of[m] == own[m]}
        scored = self.every_epoch or bool(ending)
        train = self._train(scored)
        test = self._test(scored)
        rows = (_rows([own[m] for m in self.alive], self.alive, lrs, train, test) if scored
                else self._loss_rows(train["loss"], test["loss"]))
        stopped = self._stop_diverged(own, rows)
        self.schedules.step([m for m in self.alive if m not in stopped],
                            {m: r["test_loss"] for m, r in rows.items()})
        share = (time.perf_counter() - start) / len(self.alive)
        living = {m: r for m, r in rows.items() if m not in stopped}
        for member in self.alive:
            if member not in stopped:
                self.members[member].seconds += share
        if scored:
            for member, row in living.items():
                if self.every_epoch or member in ending:
                    row["seconds"] = self.members[member].seconds
                    self.members[member].rows.append(row)
        if not self.every_epoch:
            living = {}
        pruned = (callback(epoch, living) or set()) if callback else set()
        for member in pruned:
            self.members[member].stopped = "callback"
            self.members[member].message = f"stopped by callback at epoch {own[member]}"
        self._drop(stopped | set(pruned) | ending)  # the ending ones are done: no longer here

    def _set_flat(self, flat: torch.Tensor) -> None:
        """Hold ``flat`` and each layer's weights as views of it, ``(models, ...)``.

        The views, not ``flat``, are the leaves that autograd fills: views taken of a
        ``flat`` that required grad would be taken again every step, and the backward
        pass would run one node per view and one for the split (``bench_population.py
        scaling``: 0.56 against 0.52 ms per model-epoch at 8 models, 2026-12-04).
        `_flat_grad` gathers their gradients in one row per model for the optimizer, which
        updates ``flat``, and so the views, in place.
        """
        self.flat = flat.detach()
        self.weights = [chunk.view(-1, *shape).requires_grad_()
                        for chunk, shape in zip(self.flat.split(self.sizes, 1), self.shapes,
                                                strict=True)]

    def _flat_grad(self, grads: Sequence[torch.Tensor | None]) -> None:
        """``flat.grad``: each view's gradient in ``grads`` (None: zeros), one row per model,
        as ``flat`` holds them."""
        models = len(self.flat)
        self.flat.grad = torch.cat([g.reshape(models, -1) if g is not None
                                    else self.flat.new_zeros(models, size)
                                    for g, size in zip(grads, self.sizes, strict=True)], 1)

    def _loss_rows(self, train: torch.Tensor, test: torch.Tensor) -> dict[int, dict[str, float]]:
        """Each model's losses, copied to the host only when something reads them."""
        losses = torch.stack([train, test])
        if not self.schedules.any_plateau and bool(torch.isfinite(losses).all()):
            return {}
        return {m: {"train_loss": a, "test_loss": b}
                for m, (a, b) in zip(self.alive, losses.T.tolist(), strict=True)}

    def _train(self, scored: bool = True) -> dict[str, torch.Tensor]:
        xs, ys, real = shuffled(self)  # (models, n, in), (models, n, out), (models, n, 1)
        losses: list[torch.Tensor] = []
        outs: list[torch.Tensor] = []
        counts: list[int | torch.Tensor] = []  # each model's real rows per batch
        # The padding lies past the shortest fold's rows: batches before it need no mask.
        padded_from = xs.shape[1] if real is None else min(self.lengths)
        for begin in range(0, xs.shape[1], self.batch_size):
            batch = slice(begin, begin + self.batch_size)
            rows = (real[:, batch] if real is not None and begin + self.batch_size > padded_from
                    else None)
            if self.plain is not None and rows is None:
                loss, out, grads = mse_step(self.weights, self.layout.per_layer,
                                            self.layout.depth, *self.plain,
                                            xs[:, batch], ys[:, batch])
                self._flat_grad(grads)
            else:
                out = forward(self, xs[:, batch], training=True, rows=rows)  # (models, batch, out)
                loss = mse(out, ys[:, batch], rows)
                loss.sum().backward()  # models share no weight: each gets its own gradient
                self._flat_grad([w.grad for w in self.weights])
                for weight in self.weights:
                    weight.grad = None
            self.optimizer.step()
            losses.append(loss.detach())
            outs.append(out.detach())
            counts.append(out.shape[1] if rows is None else rows.sum(dim=(1, 2)).double())
        if len(losses) == 1:  # one batch: its mean is the epoch's
            return {"loss": losses[0].double(), **(scores(ys, outs[0], real) if scored else {})}
        # Each model's own batch sizes (a padded fold's last batch is its short one); a plain
        # batch's count is a number, so an epoch without padding builds one small tensor.
        if all(isinstance(c, int) for c in counts):
            sizes = torch.tensor(counts, dtype=torch.float64, device=self.device)[:, None]
        else:
            sizes = torch.stack([torch.full_like(losses[0], c, dtype=torch.float64)
                                 if isinstance(c, int) else c for c in counts])
        loss = (torch.stack(losses).double() * sizes).sum(0) / sizes.sum(0)
        return {"loss": loss, **(scores(ys, torch.cat(outs, dim=1), real) if scored else {})}

    def _test(self, scored: bool = True) -> dict[str, torch.Tensor]:
        if self.part is not None and self.mask_test is not None:  # several folds: both
            x, y = self.x_test[self.part], self.y_test[self.part]
            with torch.no_grad():
                out = forward(self, x, training=False)
            real = self.mask_test[self.part]
            loss = mse(out, y, real).double()  # float32 squares, as below
            return {"loss": loss, **(scores(y, out, real) if scored else {})}
        with torch.no_grad():
            out = forward(self, self.x_test.expand(len(self.alive), -1, -1), training=False)
        y = self.y_test.expand_as(out)
        loss = ((out - y) ** 2).double().mean(dim=(1, 2))
        return {"loss": loss, **(scores(y, out) if scored else {})}

    def _stop_diverged(self, own: Mapping[int, int],
                       rows: dict[int, dict[str, float]]) -> set[int]:
        stopped = set()
        for member, row in rows.items():
            problem = divergence(row["train_loss"], row["test_loss"])
            if problem:
                self.members[member].stopped = "diverged"
                self.members[member].message = diverged_message(own[member], problem)
                stopped.add(member)
        return stopped

    def _drop(self, members: set[int]) -> None:
        if not members:
            return
        if self.keep_weights:
            for i, m in enumerate(self.alive):
                if m in members:
                    self.members[m].state = [w[i].detach().clone() for w in self.weights] + [
                        b[i].clone() for b in self.buffers]
        self._reindex([i for i, m in enumerate(self.alive) if m not in members])

    def _dropout_generator(self, seed: int) -> torch.Generator:
        """A model's own dropout masks: apart from its data order, which is the loop's."""
        return torch.Generator(device=self.device).manual_seed(seed)

    def _reindex(self, keep: list[int]) -> None:
        """Keep the models at these positions of the model axis, in this order."""
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        self.alive = [self.alive[i] for i in keep]
        self.lrs = []  # the lrs are set again, in the new order
        self._set_flat(self.flat[index])
        self.buffers = [b[index] for b in self.buffers]
        self.optimizer.keep(index, [self.flat])
        if self.part is not None:
            self.part = self.part[index]
        self.dropout = self.dropout[index]
        self.masks = self.masks.keep(index)
        self._what_runs()
