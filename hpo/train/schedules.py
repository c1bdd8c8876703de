"""Each model's learning rate, epoch by epoch, from its own real torch scheduler.

A population cannot hand one torch optimizer per model to ``build_scheduler``, so every model
gets a stand-in optimizer over one dummy weight, and its scheduler (built by the same
``search_spaces.build_scheduler``) is stepped exactly as the one-at-a-time loop steps the real
one: once per epoch after training, a plateau schedule with that epoch's test loss. The lr
read from the stand-in is therefore the lr the one-at-a-time path trains with.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from hpo.train.no_dynamo import StandInSGD
from hpo.train.rules import step_schedule
from search_spaces import build_scheduler

_NOT_STEPPED = r"Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`"


class Schedules:
    """The schedules of a population, indexed by member."""

    def __init__(self, params: Sequence[Mapping[str, Any]]) -> None:
        self.optimizers: list[StandInSGD] = []
        self.schedulers: list[Any] = []
        self.any_plateau = False
        self.add(params)

    def add(self, params: Sequence[Mapping[str, Any]]) -> None:
        """The schedules of models that join the population: the next member indices."""
        # StandInSGD: torch's SGD, built without importing torch._dynamo (seconds).
        optimizers = [StandInSGD([torch.nn.Parameter(torch.zeros(1))], lr=p["lr"])
                      for p in params]
        # Each for the model's own epochs, as alone (a cosine's period is its epochs).
        schedulers = [build_scheduler(opt, p, epochs=int(p["epochs"]))
                      for opt, p in zip(optimizers, params, strict=True)]
        self.optimizers += optimizers
        self.schedulers += schedulers
        self.any_plateau = self.any_plateau or any(
            isinstance(s, ReduceLROnPlateau) for s in schedulers)

    def lrs(self, members: Sequence[int]) -> list[float]:
        """The lr each of ``members`` trains with this epoch."""
        return [float(self.optimizers[m].param_groups[0]["lr"]) for m in members]

    def step(self, members: Sequence[int], losses: Mapping[int, float]) -> None:
        """End the epoch for ``members``; ``losses`` holds each one's test loss."""
        with warnings.catch_warnings():
            # The stand-in optimizers never step (they have no gradient; stepping them cost
            # 40 us per model-epoch), which torch's schedulers would warn about.
            warnings.filterwarnings("ignore", message=_NOT_STEPPED, category=UserWarning)
            for member in members:
                step_schedule(self.schedulers[member], losses.get(member, math.nan))
