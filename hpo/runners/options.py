"""Where and how a study runs: ``RunOptions``, every default it has, and every check of it.

The command line passes only the flags a user typed (``hpo.cli.run``), so each default
below is the one default there is; ``hpo run --help`` reads them from here.

Example:
    >>> RunOptions(workers=2).threads_per_process
    1
    >>> RunOptions(threads=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    hpo.errors.ConfigError: `threads >= 1` must hold (...), but got threads=0.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from hpo.errors import ConfigError
from search_spaces.values import is_int, is_number

if TYPE_CHECKING:  # a Study loads the data layer (torch): `hpo run --help` needs none
    from hpo.study.config import Study

MODES = ("auto", "population", "single")
RUNNERS = ("optuna", "ray")
# Torch threads of each worker process, and of the main process's own trainings (the refit
# after the search): the course's networks are too small for intra-op threads to pay (the
# lab trial: 0.26 s on one thread, 0.28 s on two), and threads fighting other processes for
# the cores cost 10-40x (measured on a loaded 2-core machine). On a GPU they hardly matter.
DEFAULT_THREADS = 1
DEFAULT_MAX_RETRIES = 2  # Ray runner: times a crashing trial is run again

# The counts and the smallest value of each; None passes where it is the field's default.
_AT_LEAST = {"workers": 1, "trials_per_device": 1, "population_size": 1, "threads": 1,
             "max_retries": 0}
_CHOICES = {"mode": MODES, "runner": RUNNERS}


@dataclass(frozen=True)
class RunOptions:
    """Where and how a study runs (what it searches is the Study's business).

    Args:
        storage: a storage URL or file path; None means ``hpo.journal`` in the working folder.
        workers: worker processes; None means ``trials_per_device`` per GPU, or one worker
            per CPU core on a machine without GPUs.
        devices: ``auto`` (every GPU, else the CPU), ``cpu``, or ``cuda:0,cuda:1,…``.
        trials_per_device: trials that share one device at a time.
        progress: draw a progress bar.
        trial_timeout: seconds after which one trial is failed (reason ``timeout``).
        runner: ``optuna`` (worker processes) or ``ray`` (see hpo.runners.ray_runner).
        address: with ``ray``: ``auto`` or ``ray://host:port`` joins that cluster; None
            starts a local Ray for the run.
        max_retries: with ``ray``: times a crashing trial is run again (None:
            ``DEFAULT_MAX_RETRIES``).
        mode: ``auto`` trains trials that share a batch size (and input features) as one
            batched population (``hpo.runners.population``; depth, width, activation, batch
            norm and epochs may differ) and a trial alone in its group as a population of
            its own; ``population`` sends every group through the batch path (a group of one
            too); ``single`` asks one trial at a time. Every training goes through the one
            engine (docs/architecture.md, "One engine").
        population_size: trials asked at once per worker in ``auto``/``population`` mode.
        threads: torch CPU threads of every worker process, and of this process while it
            trains (an in-process worker, the refit after ``hpo run``); None means
            ``DEFAULT_THREADS`` (one). An in-process worker gives the caller's count back.

    Example:
        >>> RunOptions(storage="hpo.journal", workers=2, threads=1).workers
        2
    """

    storage: str | None = None
    workers: int | None = None
    devices: str = "auto"
    trials_per_device: int = 1
    progress: bool = True
    trial_timeout: float | None = None
    runner: str = "optuna"
    address: str | None = None
    max_retries: int | None = None
    # Batched where it applies: the population path records what the one-at-a-time path
    # records and applies the same fault handling (tests/test_population.py).
    mode: str = "auto"
    population_size: int = 64
    threads: int | None = None

    def __post_init__(self) -> None:
        defaults = {field.name: field.default for field in fields(self)}
        for name, low in _AT_LEAST.items():
            _check_at_least(name, getattr(self, name), low, none_ok=defaults[name] is None)
        for name, choices in _CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                raise ConfigError(f"`{name}` must be one of {', '.join(choices)}, but got "
                                  f"{value!r}; pass e.g. {name}={choices[0]!r}.")
        timeout = self.trial_timeout
        if timeout is not None and not (is_number(timeout) and timeout > 0):
            raise ConfigError(f"`trial_timeout > 0` must hold (seconds, or None for no limit), "
                              f"but got trial_timeout={timeout!r}.")

    @property
    def threads_per_process(self) -> int:
        """Torch threads of each worker process and of this process's own trainings."""
        return DEFAULT_THREADS if self.threads is None else self.threads


def _check_at_least(name: str, value: Any, low: int, *, none_ok: bool) -> None:
    if (value is None and none_ok) or (is_int(value) and value >= low):
        return
    default = ", or None for the default" if none_ok else ""
    raise ConfigError(f"`{name} >= {low}` must hold (an int{default}), but got {name}={value!r}.")


def check_options(study: Study, options: RunOptions) -> None:
    """Refuse options the chosen runner does not apply (or the study's pruner needs Ray)."""
    if options.runner == "ray":
        ray_refuses = [flag for flag, given in (
            ("--mode population", options.mode == "population"),
            ("--trial-timeout", options.trial_timeout is not None),
            ("--threads", options.threads is not None)) if given]
        if ray_refuses:
            raise ConfigError(f"{', '.join(ray_refuses)} only apply with --runner optuna (a "
                              "Ray actor trains one trial at a time, with a thread per CPU of "
                              "its share); drop them or use --runner optuna.")
        return
    ray_only = [flag for flag, value in (("--address", options.address),
                                          ("--max-retries", options.max_retries),
                                          ("--pruner asha", study.pruner == "asha" or None))
                if value is not None]
    if ray_only:
        raise ConfigError(f"{', '.join(ray_only)} only apply with --runner ray; add "
                          "--runner ray, or drop them (the Optuna runner's sha pruner is "
                          "asynchronous successive halving too).")
