"""SGD, Adam, AdamW and RMSprop on stacked weights, with one lr and knob value per model.

The formulas are torch's own single-tensor ones (``torch.optim.SGD`` etc. with their default
betas, alpha and eps, as ``search_spaces.build_optimizer`` builds them), written on tensors
whose first axis is the model, so one call steps a whole population. Models of different
optimizers may share a population: each kind's update is computed and each model keeps its
own kind's result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

_BETAS, _ADAM_EPS = (0.9, 0.999), 1e-8
_ALPHA, _RMS_EPS = 0.99, 1e-8


class StackedOptimizer:
    """Per-model optimizer state over weights shaped ``(models, ...)``."""

    def __init__(self, weights: list[torch.Tensor], params: Sequence[Mapping[str, Any]],
                 device: torch.device) -> None:
        self.weights = weights
        self.device = device
        # The weights' own dtype: float64 weights (the float64 parity test) get float64 knobs.
        self.dtype = weights[0].dtype
        # (models, 1, ...): one value per model, broadcast over each weight's other axes.
        self.column_shape = (-1,) + (1,) * (weights[0].dim() - 1)
        self.kinds: list[str] = []
        self.masks: dict[str, torch.Tensor] = {}
        self.steps = 0
        # On the host, per model in model-axis order: the step count when it joined and its
        # lr. Adam's bias corrections are computed from them in Python floats, as torch's
        # Adam computes them, whatever the company: a tensor pow rounds otherwise, and
        # differently for a model alone than in a population.
        self.joined: list[int] = []
        self.lrs: list[float] = []
        # Adam's corrections, computed once per step: (the step, (step size, correction 2)).
        self._corrections: tuple[int, tuple[torch.Tensor, torch.Tensor]] = (-1, (
            torch.empty(0), torch.empty(0)))
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in weights]
        empty = self._column([])
        self.weight_decay = self.momentum = self.lr = empty
        self.nesterov = empty.bool()
        self._add_knobs(params)

    def _column(self, values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=self.dtype, device=self.device).view(self.column_shape)

    def _add_knobs(self, params: Sequence[Mapping[str, Any]]) -> None:
        """Append the knobs of ``params``' models to the model axis."""
        names = [str(p["optimizer"]) for p in params]
        before = len(self.lr)
        self.kinds = sorted({*self.kinds, *names})
        self.masks = {k: torch.cat([self.masks.get(k, self._column([0.0] * before).bool()),
                                    self._column([float(n == k) for n in names]).bool()])
                      for k in self.kinds}

        def joined(old: torch.Tensor, values: list[float]) -> torch.Tensor:
            return torch.cat([old, self._column(values).to(old.dtype)])

        self.weight_decay = joined(self.weight_decay,
                                   [float(p.get("weight_decay") or 0.0) for p in params])
        self.momentum = joined(self.momentum, [float(p.get("momentum") or 0.0) for p in params])
        self.nesterov = joined(self.nesterov, [float(bool(p.get("nesterov"))) for p in params])
        self.lr = joined(self.lr, [float(p["lr"]) for p in params])
        self.lrs += [float(p["lr"]) for p in params]
        self.joined += [self.steps] * len(params)
        self._corrections = (-1, self._corrections[1])
        self._what_runs()

    def _what_runs(self) -> None:
        """Which knobs some model uses: the updates skip the terms none does."""
        self.any_nesterov = bool(self.nesterov.any())
        self.any_weight_decay = bool(self.weight_decay.any())

    def admit(self, params: Sequence[Mapping[str, Any]], weights: list[torch.Tensor]) -> None:
        """Models that join mid-training (appended to the model axis of ``weights``): their
        state starts at zero and their step count at 0, as a fresh torch optimizer's."""
        self._add_knobs(params)
        # Zero rows are a fresh state: Adam's and RMSprop's moments start at 0, and SGD's
        # momentum buffer 0 * momentum + grad is the first gradient, as torch starts it.
        self.state = [{k: torch.cat([v, v.new_zeros(len(params), *v.shape[1:])])
                       for k, v in state.items()} for state in self.state]
        self.weights = weights

    def adam_corrections(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This step's Adam step size (lr over the first moment's bias correction) and the
        square root of the second moment's bias correction, per model, ``(models, 1)``."""
        beta1, beta2 = _BETAS
        if self._corrections[0] != self.steps:
            steps = [self.steps - joined for joined in self.joined]
            self._corrections = (self.steps, (
                self._column([lr / (1 - beta1**s) for lr, s in zip(self.lrs, steps,
                                                                    strict=True)]),
                self._column([(1 - beta2**s) ** 0.5 for s in steps])))
        return self._corrections[1]

    def set_lr(self, lrs: Sequence[float]) -> None:
        """This epoch's learning rate of every model still training, in model-axis order."""
        self.lrs = [float(lr) for lr in lrs]
        self.lr = self._column(self.lrs)
        self._corrections = (-1, self._corrections[1])

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        for index, weight in enumerate(self.weights):
            grad = weight.grad
            if grad is None:
                continue
            new: torch.Tensor | None = None
            for kind in self.kinds:
                value = _UPDATES[kind](self, self.state[index], weight, grad)
                new = value if new is None else torch.where(self.masks[kind], value, new)
            assert new is not None  # a population has at least one kind
            weight.copy_(new)

    def keep(self, index: torch.Tensor, weights: list[torch.Tensor]) -> None:
        """Keep only the models at ``index``, in its order (the others were pruned, diverged
        or done)."""
        self.weights = weights
        self.masks = {k: m[index] for k, m in self.masks.items()}
        for name in ("weight_decay", "momentum", "nesterov", "lr"):
            setattr(self, name, getattr(self, name)[index])
        kept = index.tolist()
        self.joined = [self.joined[i] for i in kept]
        self.lrs = [self.lrs[i] for i in kept]
        self._corrections = (-1, self._corrections[1])
        self._what_runs()
        self.state = [{k: v[index] for k, v in state.items()} for state in self.state]

    def _with_l2(self, weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        if not self.any_weight_decay:  # as torch adds nothing for weight_decay 0
            return grad
        return grad + self.weight_decay * weight


def _sgd(opt: StackedOptimizer, state: dict[str, torch.Tensor], weight: torch.Tensor,
         grad: torch.Tensor) -> torch.Tensor:
    grad = opt._with_l2(weight, grad)
    # torch starts the buffer at the first gradient; momentum 0 then keeps it equal to grad.
    buf = state["sgd"] = grad.clone() if "sgd" not in state else (
        state["sgd"] * opt.momentum + grad)
    if not opt.any_nesterov:  # three ops a step saved where no model uses it
        return weight - opt.lr * buf
    direction = torch.where(opt.nesterov, grad + opt.momentum * buf, buf)
    return weight - opt.lr * direction


def _adam_step(opt: StackedOptimizer, state: dict[str, torch.Tensor], key: str,
               weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    beta1, beta2 = _BETAS
    if f"{key}_m" not in state:  # setdefault would build (and drop) zeros every step
        state[f"{key}_m"], state[f"{key}_v"] = torch.zeros_like(weight), torch.zeros_like(weight)
    m, v = state[f"{key}_m"], state[f"{key}_v"]
    m.lerp_(grad, 1 - beta1)
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    step_size, correction2_sqrt = opt.adam_corrections()
    denom = (v.sqrt() / correction2_sqrt).add_(_ADAM_EPS)
    return weight - step_size * (m / denom)


def _adam(opt: StackedOptimizer, state: dict[str, torch.Tensor], weight: torch.Tensor,
          grad: torch.Tensor) -> torch.Tensor:
    return _adam_step(opt, state, "adam", weight, opt._with_l2(weight, grad))


def _adamw(opt: StackedOptimizer, state: dict[str, torch.Tensor], weight: torch.Tensor,
           grad: torch.Tensor) -> torch.Tensor:
    decayed = weight * (1 - opt.lr * opt.weight_decay)  # decoupled from the gradient
    return _adam_step(opt, state, "adamw", decayed, grad)


def _rmsprop(opt: StackedOptimizer, state: dict[str, torch.Tensor], weight: torch.Tensor,
             grad: torch.Tensor) -> torch.Tensor:
    grad = opt._with_l2(weight, grad)
    if "rms_sq" not in state:
        state["rms_sq"] = torch.zeros_like(weight)
    square = state["rms_sq"]
    square.mul_(_ALPHA).addcmul_(grad, grad, value=1 - _ALPHA)
    scaled = grad / (square.sqrt() + _RMS_EPS)
    # With momentum 0 the buffer is the scaled gradient itself: torch's plain update.
    buf = state["rms_buf"] = state.get("rms_buf", torch.zeros_like(weight)) * opt.momentum + scaled
    return weight - opt.lr * buf


_UPDATES: dict[str, Callable[..., torch.Tensor]] = {
    "sgd": _sgd, "adam": _adam, "adamw": _adamw, "rmsprop": _rmsprop,
}
