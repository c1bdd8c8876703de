"""Hand-picked configurations: a TOML file of who chose what, resolved to full params dicts,
and re-trained on an automated study's folds, each run kept in the storage as a manual trial.

Each ``[configs.NAME]`` table is one configuration: ``who`` picked it, ``family`` names the
learning-rate schedule, and the other keys are params of docs/architecture.md (``lr``,
``epochs``, ``<family>_…`` …). ``[defaults]`` holds what the entries share (the lab network,
the optimizer, the loop); an entry's own keys win. A family-specific key in ``[defaults]``
(``cosine_floor_fraction``) applies only to entries of that family. Optional keys
(``batch_norm``, ``dropout``, ``weight_decay``, ``momentum``, ``nesterov``) default to off.

Example (studies/homework_manual.toml has the lecture's picks and some students')::

    [defaults]
    hidden_layers = 2
    width = 20
    activation = "tanh"
    optimizer = "adam"
    batch_size = 64
    epochs = 50

    [configs.lecture-exponential]
    who = "lecture"
    family = "exponential"
    lr = 0.1
    exponential_lr_final = 0.001

>>> configs = load_manual("studies/homework_manual.toml")          # doctest: +SKIP
>>> configs[0].name, configs[0].family, configs[0].params["lr"]     # doctest: +SKIP
('lecture-exponential', 'exponential', 0.1)
>>> baseline = Baseline.of(load_study("lr-exponential"))           # doctest: +SKIP
>>> manual = open_manual_study("homework_manual-manual")           # doctest: +SKIP
>>> [t.value for t in retrain(configs[0], baseline, [0, 1, 2], manual)]  # doctest: +SKIP
"""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpo.data import Fold
from hpo.errors import ConfigError
from hpo.store.attrs import split_attrs, trial_params
from hpo.store.record import comparable_part, folds_from_record, stored_record
from hpo.store.storage import open_storage
from hpo.train.objective import REQUIRED_PARAMS, Job, check_params, evaluate_many
from hpo.train.reporter import MemoryReporter
from search_spaces import (
    FAMILIES,
    SpaceError,
    suggest_architecture,
    suggest_optimizer,
    suggest_training,
)
from search_spaces.schedulers import family_keys, suggest_scheduler

# Keys every family shares, in the order of docs/architecture.md.
SHARED_KEYS = ("hidden_layers", "width", "activation", "batch_norm", "dropout", "optimizer",
               "weight_decay", "momentum", "nesterov", "lr", "batch_size", "epochs")
# Off unless given: a student who never touched them trained without them.
OPTIONAL = {"batch_norm": False, "dropout": 0.0, "weight_decay": 0.0, "momentum": 0.0,
            "nesterov": False}
ENTRY_KEYS = ("who", "family", "note")  # about the entry, not params
TOP_KEYS = ("defaults", "configs")
_APPLIES = {"momentum": "it needs optimizer sgd or rmsprop",
            "nesterov": "it needs optimizer sgd with momentum > 0"}
MANUAL_SUFFIX = "-manual"  # the manual study of homework.toml is "homework-manual"


@dataclass(frozen=True)
class ManualConfig:
    """One hand-picked configuration: its name, who chose it, its family, its full params."""

    name: str
    who: str
    family: str
    params: dict[str, Any]
    note: str = ""


def load_manual(path: str | Path) -> list[ManualConfig]:
    """Every configuration in a manual-config TOML file, in file order, validated.

    Raises:
        ConfigError: the file is missing or not TOML, or an entry is invalid (one line that
            names the entry and the field).
    """
    path = Path(path)
    document = _read_toml(path)
    defaults = _table(document.get("defaults", {}), path, "[defaults]")
    _check_defaults(defaults, path)
    entries = _table(document.get("configs", {}), path, "[configs]")
    if not entries:
        raise ConfigError(f"{path}: expected at least one [configs.NAME] table, but found none; "
                          "add one with who, family and the params it changes.")
    return [_resolve(name, entry, defaults, path) for name, entry in entries.items()]


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; expected a TOML file of hand-picked configs, "
                          "check the path.")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}; fix the syntax there.") from None
    unknown = sorted(set(document) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"{path}: expected only the tables {list(TOP_KEYS)} at the top, but "
                          f"got {unknown}; put each config under [configs.NAME].")
    return document


def _table(value: Any, path: Path, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {where} must be a table, but got {value!r}; "
                          f"write it as a {where} header followed by key = value lines.")
    return value


def _check_defaults(defaults: Mapping[str, Any], path: Path) -> None:
    valid = [*SHARED_KEYS, *(key for family in FAMILIES for key in family_keys(family))]
    unknown = sorted(set(defaults) - set(valid))
    if unknown:
        raise ConfigError(f"{path}: [defaults] got unknown {unknown}; valid keys are {valid}. "
                          "Fix the spelling, or move who/family into each config.")


def _resolve(name: str, entry: Any, defaults: Mapping[str, Any], path: Path) -> ManualConfig:
    where = f"{path}: config {name!r}"
    entry = _table(entry, path, f"[configs.{name}]")
    who, family, note = _entry_fields(entry, where)
    valid = (*ENTRY_KEYS, *SHARED_KEYS, *family_keys(family))
    unknown = sorted(set(entry) - set(valid))
    if unknown:
        raise ConfigError(f"{where}: unknown key {', '.join(unknown)} for family {family!r}; "
                          f"valid keys are {list(valid)}.")
    own = {key: value for key, value in entry.items() if key not in ENTRY_KEYS}
    merged = {**OPTIONAL, **_defaults_for(defaults, family), **own}
    _check_required(merged, family, where)
    params = _params(merged, family, where, set(own))
    _check_applicable(params, own, where)
    check_params(params)
    return ManualConfig(name=name, who=who, family=family, params=params, note=note)


def _entry_fields(entry: Mapping[str, Any], where: str) -> tuple[str, str, str]:
    for field, example in (("who", '"your name"'), ("family", '"cosine"')):
        if field not in entry:
            raise ConfigError(f"{where}: the field `{field}` is missing; add e.g. "
                              f"{field} = {example}.")
    for field in ("who", "family", "note"):
        value = entry.get(field, "")
        if not isinstance(value, str) or (field != "note" and not value.strip()):
            raise ConfigError(f"{where}: `{field}` must be a non-empty string, but got "
                              f"{value!r}; quote it, e.g. {field} = \"…\".")
    if entry["family"] not in FAMILIES:
        raise ConfigError(f"{where}: `family` must be one of {list(FAMILIES)}, but got "
                          f"{entry['family']!r}; fix the spelling.")
    return entry["who"], entry["family"], entry.get("note", "")


def _defaults_for(defaults: Mapping[str, Any], family: str) -> dict[str, Any]:
    own_keys = (*SHARED_KEYS, *family_keys(family))
    return {key: value for key, value in defaults.items() if key in own_keys}


def _check_required(merged: Mapping[str, Any], family: str, where: str) -> None:
    # What the objective requires, with the schedule spelled as the family's own keys.
    required = [key for key in REQUIRED_PARAMS if key != "scheduler"]
    if merged.get("hidden_layers") != 0:  # linear regression has no width or activation
        required[1:1] = ["width", "activation"]
    required += family_keys(family)
    missing = [key for key in required if key not in merged]
    if missing:
        raise ConfigError(f"{where}: the field `{missing[0]}` is missing (needed: "
                          f"{', '.join(missing)}); add it to the config or to [defaults].")


def _params(merged: Mapping[str, Any], family: str, where: str,
            own: set[str]) -> dict[str, Any]:
    """The params dict, built by the search-space functions so the same checks apply."""
    trial = optuna.trial.FixedTrial({})  # every value is fixed: nothing is ever asked of it
    m = dict(merged)
    try:
        return {
            **suggest_architecture(
                trial, hidden_layers=m["hidden_layers"], width=m.get("width"),
                activation=m.get("activation"), batch_norm=m["batch_norm"],
                dropout=m["dropout"]),
            **suggest_optimizer(trial, optimizer=m["optimizer"], weight_decay=m["weight_decay"],
                                momentum=m["momentum"], nesterov=m["nesterov"]),
            **suggest_training(trial, batch_size=m["batch_size"], epochs=m["epochs"]),
            **suggest_scheduler(trial, family, {family: {
                key: m[key] for key in ("lr", *family_keys(family))}}),
        }
    except SpaceError as error:
        raise ConfigError(f"{_where_field(error.field, where, own)}: {error}") from None


def _where_field(field: str, where: str, own: set[str]) -> str:
    # Say whether the field at fault came from the config's own entry or from [defaults].
    return where if field in own or not field else f"{where} (from [defaults])"


def _check_applicable(params: Mapping[str, Any], own: Mapping[str, Any], where: str) -> None:
    # A knob the config turns on that its optimizer or network ignores is a mistake worth
    # naming; one set to off (momentum = 0, nesterov = false) changes nothing either way.
    ignored = [key for key in own if params.get(key) is None and own[key] not in (None, 0)]
    if ignored:
        key = ignored[0]
        raise ConfigError(f"{where}: `{key}` does not apply here: "
                          f"{_APPLIES.get(key, 'it needs hidden_layers > 0')}, but got "
                          f"optimizer={params['optimizer']!r}, momentum={params['momentum']}, "
                          f"hidden_layers={params['hidden_layers']}; drop it.")


@dataclass(frozen=True)
class Baseline:
    """An automated study that hand-picked configs are re-trained against, on its folds."""

    study: str
    record: dict[str, Any]
    folds: list[Fold]

    @classmethod
    def of(cls, optuna_study: optuna.Study) -> Baseline:
        """The baseline of a stored study that ``hpo run`` made."""
        record = stored_record(optuna_study)
        return cls(optuna_study.study_name, record, folds_from_record(record))

    @property
    def folds_key(self) -> dict[str, Any]:
        """What the folds were made from; stored with each manual trial."""
        return comparable_part(self.record)


def manual_study_name(path: str | Path) -> str:
    """The storage name of a manual file's trials: ``<file stem>-manual``."""
    return f"{Path(path).stem}{MANUAL_SUFFIX}"


def open_manual_study(name: str, storage: str | None = None) -> optuna.Study:
    """The study holding manual trials, created on first use; refused if a search owns it."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=open_storage(storage),
                                direction="maximize", load_if_exists=True)
    foreign = [t.number for t in study.get_trials(deepcopy=False)
               if t.user_attrs.get("source") != "manual"]
    if foreign:
        raise ConfigError(f"Study {name!r} holds search trials ({len(foreign)}), expected only "
                          "manual ones; rename the manual file or use another --storage.")
    return study


def retrain(config: ManualConfig, baseline: Baseline, seeds: list[int],
            manual: optuna.Study, on_run: Callable[[], None] = lambda: None
            ) -> list[FrozenTrial]:
    """One manual trial per seed, trained on the baseline's folds and added to ``manual``
    (`retrain_many` of one config)."""
    return retrain_many([config], baseline, seeds, manual, on_run)[0]


def retrain_many(configs: Sequence[ManualConfig], baseline: Baseline, seeds: list[int],
                 manual: optuna.Study, on_run: Callable[[], None] = lambda: None
                 ) -> list[list[FrozenTrial]]:
    """For each config, one manual trial per seed, trained on the baseline's folds and added
    to ``manual``; the trainings of every config and seed train as one population where
    they can share it.

    A seed already stored for a config, params and folds is reused, not trained again:
    training is deterministic, so a second ``hpo compare`` costs no training. ``on_run`` is
    called after each seed (trained or reused), for a progress display.
    """
    known = [_stored_runs(manual, config, baseline) for config in configs]
    jobs = {(i, seed): _job(config, baseline, seed) for i, config in enumerate(configs)
            for seed in seeds if seed not in known[i]}
    evaluate_many(list(jobs.values()), baseline.folds,
                  score=str(baseline.record.get("score", "final")), cohort=uuid.uuid4().hex)
    for (i, seed), job in jobs.items():
        known[i][seed] = _trial_of(job)
        manual.add_trial(known[i][seed])
    for _ in range(len(configs) * len(seeds)):
        on_run()
    return [[runs[seed] for seed in seeds] for runs in known]


def _stored_runs(manual: optuna.Study, config: ManualConfig,
                 baseline: Baseline) -> dict[int, FrozenTrial]:
    wanted = (config.name, baseline.study, config.params, baseline.folds_key)
    runs = {}
    for trial in manual.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)):
        attrs = trial.user_attrs
        if (attrs.get("name"), attrs.get("study"), trial_params(trial),
                attrs.get("folds")) == wanted:
            runs[int(attrs["seed"])] = trial
    return runs


def _job(config: ManualConfig, baseline: Baseline, seed: int) -> Job:
    reporter = MemoryReporter()
    reporter.record({"source": "manual", "who": config.who, "name": config.name,
                     "note": config.note, "study": baseline.study,
                     "folds": baseline.folds_key})
    return Job(config.params, seed, reporter)


def _trial_of(job: Job) -> FrozenTrial:
    """The manual trial a trained job makes (FAIL, kept, when it diverged: a config that
    diverges is a finding too)."""
    assert isinstance(job.reporter, MemoryReporter)
    state = TrialState.FAIL if job.value is None else TrialState.COMPLETE
    curve = {int(row["epoch"]): float(row["test_r2"]) for row in job.reporter.history}
    user, hidden = split_attrs(job.reporter.attrs)
    return optuna.trial.create_trial(state=state, value=job.value, user_attrs=user,
                                     system_attrs=hidden, intermediate_values=curve)
