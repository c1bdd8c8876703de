"""The Ray side of a trial: a long-lived actor that trains many trials, one at a time.

An actor builds the study's folds once, then trains each params dict it is given in a
thread of its own, while the driver collects what the objective reported (epochs, attrs,
the end) with ``events()``. The actor never touches the storage: the driver replays the
events into the Optuna trial, judges pruning, and tells the actor to stop a pruned trial.
Reusing actors spares Ray's start-up cost (about a second) on every trial.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping
from typing import Any

import torch

from hpo.data import prepare_folds
from hpo.errors import HPOError
from hpo.study.config import Study
from hpo.train.objective import TrialDiverged, evaluate
from search_spaces.errors import SpaceError

# An event is a tuple: ("report", epoch, metrics), ("record", attrs), or
# ("end", how, value_or_message) with how one of completed, stopped, diverged, config_error,
# crashed.
Event = tuple[Any, ...]


def fold_settings(study: Study) -> dict[str, Any]:
    """What an actor needs to rebuild the study's folds (the space never leaves the driver:
    a study file's functions may not be importable on the Ray nodes)."""
    return {"source": study.data, "test_size": study.test_size, "cv_folds": study.cv_folds,
            "standardize": study.standardize, "seed": study.seed,
            "validation_size": study.validation_size}


class _Stopped(Exception):
    """The driver pruned the trial: training ends at the next epoch."""


class _StreamReporter:
    """A Reporter that queues what the objective says, and stops when the driver asks."""

    def __init__(self, actor: TrialActor) -> None:
        self._actor = actor

    def report(self, epoch: int, metrics: Mapping[str, float]) -> None:
        if self._actor.stopping:
            raise _Stopped
        self._actor.push(("report", epoch, dict(metrics)))

    def record(self, attrs: Mapping[str, Any]) -> None:
        self._actor.push(("record", dict(attrs)))


class TrialActor:
    """Trains trials for one driver; wrapped by ``ray.remote`` in the runner."""

    def __init__(self, data: dict[str, Any], score: str, threads: int, seeds: int = 1) -> None:
        torch.set_num_threads(threads)
        self._score = score
        self._seeds = seeds
        self._folds = prepare_folds(**data)
        self._events: list[Event] = []
        self._changed = threading.Condition()
        self.stopping = False

    def start(self, params: dict[str, Any], seed: int) -> None:
        """Begin training; the first event names this actor (``ray_worker``: host:pid)."""
        with self._changed:
            self._events, self.stopping = [], False
        self.push(("record", {"ray_worker": f"{socket.gethostname()}:{os.getpid()}"}))
        threading.Thread(target=self._train, args=(params, seed), daemon=True).start()

    def events(self, stop: bool, wait: float) -> list[Event]:
        """What happened since the last call, waiting up to ``wait`` seconds for something."""
        with self._changed:
            self.stopping = self.stopping or stop
            self._changed.wait_for(lambda: bool(self._events), timeout=wait)
            events, self._events = self._events, []
        return events

    def push(self, event: Event) -> None:
        with self._changed:
            self._events.append(event)
            self._changed.notify_all()

    def _train(self, params: dict[str, Any], seed: int) -> None:
        self.push(("end", *self._outcome(params, seed)))

    def _outcome(self, params: dict[str, Any], seed: int) -> tuple[str, Any]:
        # Ray makes the GPUs it gave this actor visible as cuda:0, cuda:1, ...
        device = "cuda:0" if _assigned_gpus() else "cpu"
        try:
            value = evaluate(params, self._folds, _StreamReporter(self), seed=seed,
                             device=device, score=self._score, seeds=self._seeds)
        except _Stopped:
            return "stopped", None
        except TrialDiverged as error:
            return "diverged", str(error)
        except (HPOError, SpaceError) as error:  # a mistake in the params: no retry helps
            return "config_error", str(error)
        except Exception as error:  # any other crash: the driver retries the trial
            return "crashed", f"{type(error).__name__}: {error}"
        return "completed", value


def _assigned_gpus() -> list[Any]:
    import ray

    return list(ray.get_gpu_ids()) if torch.cuda.is_available() else []
