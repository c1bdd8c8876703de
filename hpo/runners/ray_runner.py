"""Run a Study on Ray: the driver keeps the Optuna study, Ray actors train.

The driver (this process) is the only one that writes the storage. For each trial it asks
Optuna (or takes a queued grid point), runs the define-by-run space on that trial, and
hands the params to an idle trial actor (one per CPU or GPU share, each training many
trials). As the actor reports epochs, the driver replays them into the trial through the
same ``OptunaReporter`` as the Optuna runner, so every epoch's R² and every attribute
reaches the storage as it happens, and the study's pruner judges each epoch; a pruned
trial's actor is told to stop. A trial that crashes (an exception, or its actor dying) is
retried up to ``max_retries`` times on the same Optuna trial (``retries`` attr).

Example:
    >>> hpo.run(study, hpo.RunOptions(runner="ray", storage="hpo.journal"))  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import optuna
from optuna.trial import TrialState

from hpo.data import prepare_folds
from hpo.errors import ConfigError
from hpo.runners.asha import AshaPruner
from hpo.runners.options import DEFAULT_MAX_RETRIES
from hpo.runners.progress import StudyProgress
from hpo.runners.ray_actor import Event, TrialActor, fold_settings
from hpo.runners.ray_cluster import TrialResources, check_ray_devices, connect, plan_resources
from hpo.runners.trials import OptunaReporter, call_space, claim_waiting_trial, this_worker
from hpo.store.storage import open_storage
from hpo.store.summary import finished_count
from hpo.study.algorithms import make_pruner, make_sampler
from hpo.study.config import Study
from hpo.train.rules import trial_seed


class RayRunOptions(Protocol):
    """What the Ray runner reads of ``hpo.runners.options.RunOptions``."""

    @property
    def workers(self) -> int | None: ...
    @property
    def devices(self) -> str: ...
    @property
    def trials_per_device(self) -> int: ...
    @property
    def progress(self) -> bool: ...
    @property
    def address(self) -> str | None: ...
    @property
    def max_retries(self) -> int | None: ...

_POLL_SECONDS = 1.0  # how long an actor holds a poll open when it has nothing to say


def run_ray(study: Study, options: RayRunOptions,
            prepare: Callable[[], tuple[str, optuna.Study, int]]) -> optuna.Study:
    """Run (or resume) the study on Ray until it holds ``study.n_trials`` finished trials.

    ``prepare`` opens the storage and creates, loads or resumes the study (the Optuna
    runner's, so both resume alike); it is called only once the cluster has been reached
    and can give what the study asks, so a refused run leaves the storage unchanged.
    """
    import ray

    check_ray_devices(options.devices)
    started = connect(options.address)
    try:
        resources = plan_resources(options.devices, options.trials_per_device,
                                   options.workers, ray.cluster_resources())
        prepare_folds(**fold_settings(study))  # bad data fails here, not in every actor
        storage_url, optuna_study, remaining = prepare()
        if remaining:
            _Driver(study, options, storage_url, optuna_study, resources).run(remaining)
    finally:
        if started:
            ray.shutdown()
    return optuna_study


@dataclass
class _Running:
    """A trial in the hands of one actor."""

    trial: optuna.Trial
    params: dict[str, Any]
    reporter: OptunaReporter
    attempt: int = 0
    pruned: bool = False


@dataclass
class _Slot:
    actor: Any
    running: _Running | None = None
    poll: Any = None  # the pending ``events`` call


@dataclass
class _Driver:
    study: Study
    options: RayRunOptions
    storage_url: str
    base: optuna.Study
    resources: TrialResources
    slots: list[_Slot] = field(default_factory=list)

    def run(self, remaining: int) -> None:
        self.optuna_study = self._with_sampler_and_pruner()
        self.max_retries = (DEFAULT_MAX_RETRIES if self.options.max_retries is None
                            else self.options.max_retries)
        self.slots = [_Slot(self._new_actor()) for _ in range(min(remaining, self.resources.slots))]
        # Counts towards the study's target (--n-trials), as the Optuna runner's does.
        progress = StudyProgress(self.base, finished_count(self.base) + remaining,
                                 enabled=self.options.progress)
        try:
            self._loop(remaining, progress)
        finally:
            self._abandon_running()
            progress.close()

    def _with_sampler_and_pruner(self) -> optuna.Study:
        study, seed_offset = self.study, len(self.base.get_trials(deepcopy=False))
        # A resumed run draws fresh points; QMC shares one sequence through the storage.
        seed = study.seed if study.sampler == "qmc" else study.seed + seed_offset
        sampler = make_sampler(study.sampler, seed=seed, parallel=self.resources.slots > 1)
        pruner = AshaPruner() if study.pruner == "asha" else make_pruner(study.pruner)
        return optuna.load_study(study_name=study.name, storage=open_storage(self.storage_url),
                                 sampler=sampler, pruner=pruner)

    def _new_actor(self) -> Any:
        import ray

        remote = ray.remote(num_cpus=self.resources.num_cpus, num_gpus=self.resources.num_gpus,
                            max_restarts=0)(TrialActor)
        return remote.remote(fold_settings(self.study), self.study.score, self.resources.threads,
                             self.study.seeds)

    def _loop(self, remaining: int, progress: StudyProgress) -> None:
        import ray

        deadline = time.monotonic() + (self.study.timeout or math.inf)
        to_start = remaining
        while True:
            for slot in self.slots:
                if slot.running is None and to_start and time.monotonic() < deadline:
                    to_start -= self._start_next(slot)
            busy = {slot.poll: slot for slot in self.slots if slot.running is not None}
            if not busy:
                return
            ready, _ = ray.wait(list(busy), num_returns=1)
            slot = busy[ready[0]]
            self._collect(slot)
            if slot.running is None:  # a trial ended: the bar reads the storage
                progress.refresh()

    def _start_next(self, slot: _Slot) -> int:
        trial = (claim_waiting_trial(self.optuna_study, self.storage_url)
                 if self.study.sampler == "grid" else self.optuna_study.ask())
        if trial is None:
            return 0
        reporter = OptunaReporter(trial)
        reporter.record({"worker": this_worker(), "source": "search",
                         "runner": "ray"})
        try:
            params = call_space(self.study, trial)
        except BaseException:
            self.optuna_study.tell(trial, state=TrialState.FAIL)
            raise
        slot.running = _Running(trial, params, reporter)
        self._launch(slot)
        return 1

    def _launch(self, slot: _Slot) -> None:
        running = slot.running
        assert running is not None
        # Not waited for: a new actor may take seconds to start, and the others go on.
        slot.actor.start.remote(running.params, trial_seed(self.study.seed, running.trial.number))
        slot.poll = slot.actor.events.remote(False, _POLL_SECONDS)

    def _collect(self, slot: _Slot) -> None:
        import ray

        running = slot.running
        assert running is not None
        try:
            events = ray.get(slot.poll)
        except ray.exceptions.RayActorError as error:
            slot.actor = self._new_actor()
            self._crashed(slot, f"its Ray actor died: {str(error).strip().splitlines()[0]}")
            return
        for event in events:
            if event[0] == "end":
                self._end(slot, event[1], event[2])
                return
            self._replay(running, event)
        slot.poll = slot.actor.events.remote(running.pruned, _POLL_SECONDS)

    def _replay(self, running: _Running, event: Event) -> None:
        if running.pruned:
            return  # the actor trains on until it hears; the storage stops at the prune
        with warnings.catch_warnings():  # a retry reports the epochs of its failed attempt
            warnings.filterwarnings("ignore", message="The reported value is ignored")
            try:
                if event[0] == "report":
                    running.reporter.report(event[1], event[2])
                else:
                    running.reporter.record(event[1])
            except optuna.TrialPruned:
                running.pruned = True

    def _end(self, slot: _Slot, how: str, detail: Any) -> None:
        running = slot.running
        assert running is not None
        if how == "crashed" and not running.pruned:
            self._crashed(slot, str(detail))
            return
        slot.running = None
        tell = self.optuna_study.tell
        if running.pruned:
            tell(running.trial, state=TrialState.PRUNED)
        elif how == "completed":
            tell(running.trial, float(detail))
        else:  # diverged (attrs already recorded) or a mistake in the params
            tell(running.trial, state=TrialState.FAIL)
            if how == "config_error":
                raise ConfigError(str(detail))

    def _crashed(self, slot: _Slot, message: str) -> None:
        running = slot.running
        assert running is not None
        running.attempt += 1
        if running.attempt <= self.max_retries:
            running.reporter.record({"retries": running.attempt, "message": message})
            running.reporter = _fresh_reporter(running.reporter)
            self._launch(slot)
            return
        slot.running = None
        running.reporter.record({"ended": "crashed", "message": message,
                                 "retries": self.max_retries})
        self.optuna_study.tell(running.trial, state=TrialState.FAIL)
        warnings.warn(f"Trial {running.trial.number} crashed {running.attempt} time(s) and is "
                      f"recorded as failed: {message}", stacklevel=2)

    def _abandon_running(self) -> None:
        """Ctrl-C or an error: the trials in hand end FAIL (interrupted), none stays RUNNING."""
        import ray

        for slot in self.slots:
            if slot.running is not None:
                slot.running.reporter.record({"ended": "interrupted"})
                self.optuna_study.tell(slot.running.trial, state=TrialState.FAIL)
                slot.running = None
            ray.kill(slot.actor)


def _fresh_reporter(old: OptunaReporter) -> OptunaReporter:
    """A retry starts its history afresh; the attrs already recorded stay on the trial."""
    return OptunaReporter(old.trial)
