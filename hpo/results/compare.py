"""Hand-picked configs against the automated search, per scheduler family.

Every config is re-trained over ``seeds`` seeds (0, 1, …) on the folds of the automated
study that serves its family, and each run is stored as a manual trial in the study
``<manual file stem>-manual``. Then, per family: the best manual config (by its mean score)
against the search's best trial, how many trials the search needed to beat it, and the
training epochs each side spent.

Which study serves which family: the ``family`` attribute of its trials. A study whose
trials are all one family serves that family; a mixed-family study serves each family it
holds, judged on that family's trials, while its cost counts every trial it ran (the search
paid for all of them): "trials to beat" is the position in the study (trial number + 1) of
the first complete trial of the family whose R² exceeds the best manual mean, and its epochs
are the ``epochs_run`` of every trial up to that one. A family no given study serves gets a
row without numbers.

Then the verdict (hpo.results.verdict): per family, the best hand-picked configs and the
search's ``top`` trials, each chosen on what the search was scored on, are trained over the
same seeds on every non-test row and scored once on the held-out test part; the difference
between the best of each side comes with a paired 95% interval and a plain sentence.

Example:
    >>> table = compare("studies/homework_manual.toml", ["lr-exponential", "lr-step",
    ...                 "lr-cosine"], seeds=3, out="compare")        # doctest: +SKIP
    >>> table[["family", "best_manual_r2", "best_auto_r2", "trials_to_beat"]]  # doctest: +SKIP
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from hpo.errors import ConfigError
from hpo.results.compare_figure import plot
from hpo.results.compare_text import markdown
from hpo.results.manual import (
    Baseline,
    ManualConfig,
    load_manual,
    manual_study_name,
    open_manual_study,
    retrain_many,
)
from hpo.results.tables import load_study
from hpo.results.verdict import Candidate, family_verdict, score_candidates
from hpo.store.attrs import epochs_run, trial_params, write_record
from hpo.store.record import held_out_share, score_label
from hpo.train.progress import Progress
from hpo.train.threads import torch_threads
from search_spaces.values import is_int

COLUMNS = ("family", "study", "manual_configs", "best_manual", "best_manual_who",
           "best_manual_r2", "best_manual_sd", "best_auto_r2", "best_auto_trial", "trials_auto",
           "trials_to_beat", "beaten_by_trial", "epochs_manual", "epochs_auto_to_beat",
           "epochs_auto_total", "chosen_on", "test_manual", "test_manual_sd", "test_search",
           "test_search_sd", "diff", "ci_low", "ci_high", "verdict")
TOP_MANUAL = 2  # hand-picked configs per family re-trained on the test part
_COUNTS = ("manual_configs", "best_auto_trial", "trials_auto", "trials_to_beat",
           "beaten_by_trial", "epochs_manual", "epochs_auto_to_beat", "epochs_auto_total")


def compare(
    manual_path: str | Path,
    study_names: Sequence[str],
    storage: str | None = None,
    seeds: int = 3,
    out: str | Path | None = None,
    top: int = 3,
    *,
    progress: bool = False,
    threads: int = 1,
) -> pd.DataFrame:
    """Re-train the hand-picked configs and compare them with the studies, one row a family.

    With ``out``, also writes ``compare.md`` (the tables) and ``compare.png`` there.
    ``frame.attrs["configs"]`` holds one row per config (mean ± sd over the seeds, on what
    the study scored trials on); ``frame.attrs["test"]`` one row per config or trial scored
    on the held-out test part (``scores``: one R² per seed 0 … seeds-1).
    With ``progress``, shows the runs trained so far and the best mean R² among them.
    Every training takes ``threads`` torch threads (each records its count).
    """
    if not is_int(seeds) or seeds < 1:
        raise ConfigError(f"`seeds` must be an int >= 1, but got {seeds!r}; pass e.g. 3.")
    configs = load_manual(manual_path)
    studies = [load_study(name, storage) for name in study_names]
    served = _served(studies, {c.family for c in configs})
    manual = open_manual_study(manual_study_name(manual_path), storage)
    baselines = {s.study_name: Baseline.of(s) for s in served.values()}
    bar = Progress(len(configs) * seeds, "hand-picked configs", unit="training",
                   enabled=progress)
    # One torch thread, as a search's workers: the course's networks gain nothing from
    # more, and threads contending with a busy machine's other work made compare 6x slower.
    with torch_threads(threads):
        try:
            scores = _scores(configs, served, baselines, list(range(seeds)), manual, bar)
        finally:
            bar.close()
        _keep_record(manual, list(baselines.values()), manual_path)
        rows = [_family_row(family, served.get(family), scores)
                for family in dict.fromkeys(c.family for c in configs)]
        tested = _on_test(rows, configs, served, baselines, list(range(seeds)), top,
                          progress)
    table = pd.DataFrame(rows, columns=list(COLUMNS)).astype({c: "Int64" for c in _COUNTS})
    table.attrs["configs"] = scores
    table.attrs["test"] = tested
    if out is not None:
        write_outputs(Path(out), table, served)
    return table


def _on_test(rows: list[dict[str, Any]], configs: list[ManualConfig],
             served: dict[str, optuna.Study], baselines: dict[str, Baseline],
             seeds: list[int], top: int, progress: bool = False) -> pd.DataFrame:
    """Score each family's candidates on the held-out test part; fill the verdict columns."""
    tested: list[dict[str, Any]] = []
    params = {c.name: c.params for c in configs}
    todo: list[tuple[dict[str, Any], dict[str, Any], list[Candidate]]] = []
    for row in rows:
        optuna_study = served.get(row["family"])
        if optuna_study is None or "best_auto_r2" not in row or "best_manual_r2" not in row:
            continue
        record = baselines[optuna_study.study_name].record
        row["chosen_on"] = score_label(record)
        if not held_out_share(record):
            row["verdict"] = "no test part held out (test_size=0): no verdict"
            continue
        todo.append((row, record, _candidates(row, params, optuna_study, top)))
    # As many trainings again as the hand-picked configs took: a progress of their own.
    total = sum(len(candidates) for _, _, candidates in todo) * len(seeds)
    bar = Progress(total, "held-out test", unit="training", enabled=progress and total > 0)
    runs = 0

    def one_more_run() -> None:
        nonlocal runs
        runs += 1
        bar.update(runs)

    try:
        for row, record, candidates in todo:
            found = score_candidates(candidates, record, seeds, one_more_run)
            row.update(family_verdict(found))
            tested += [{"family": row["family"], **item} for item in found]
    finally:
        bar.close()
    return pd.DataFrame(tested, columns=["family", "side", "name", "chosen_r2", "test_mean",
                                         "test_sd", "scores"])


def _candidates(row: dict[str, Any], params: dict[str, dict[str, Any]],
                optuna_study: optuna.Study, top: int) -> list[Candidate]:
    """The family's best hand-picked configs, then the search's best trials, best first."""
    manual = row["_ranked"].head(TOP_MANUAL)
    trials = sorted((t for t in optuna_study.get_trials(deepcopy=False)
                     if t.state == TrialState.COMPLETE and t.value is not None
                     and t.user_attrs.get("family") == row["family"]),
                    key=lambda t: -_value(t))[:top]
    return [*(Candidate("hand-picked", f"{c.name} ({c.who})", params[c.name], float(c.mean_r2))
              for c in manual.itertuples()),
            *(Candidate("search", f"trial {t.number}", trial_params(t), float(t.value or 0))
              for t in trials)]


def served_families(optuna_study: optuna.Study) -> list[str]:
    """The scheduler families a study's trials trained, in order of first appearance."""
    families = [t.user_attrs.get("family") for t in optuna_study.get_trials(deepcopy=False)]
    found = list(dict.fromkeys(str(f) for f in families if f is not None))
    if not found:
        raise ConfigError(f"Study {optuna_study.study_name!r} has no trial with a scheduler "
                          "family yet; run it first (hpo run STUDY_FILE).")
    return found


def _served(studies: list[optuna.Study], wanted: set[str]) -> dict[str, optuna.Study]:
    served: dict[str, optuna.Study] = {}
    for optuna_study in studies:
        for family in served_families(optuna_study):
            if family in served:
                raise ConfigError(
                    f"Studies {served[family].study_name!r} and {optuna_study.study_name!r} "
                    f"both serve family {family!r}, expected one study per family; "
                    "compare them in separate runs.")
            served[family] = optuna_study
    if not wanted & set(served):
        raise ConfigError(f"No given study serves a family of the manual configs "
                          f"({', '.join(sorted(wanted))}); the studies serve "
                          f"{', '.join(served)}. Name the studies of those families.")
    return served


def _scores(configs: list[ManualConfig], served: dict[str, optuna.Study],
            baselines: dict[str, Baseline], seeds: list[int],
            manual: optuna.Study, bar: Progress) -> pd.DataFrame:
    """One row per config: its mean and sd test R² over the seeds, and what it cost."""
    rows: list[dict[str, Any]] = []
    runs = 0

    def one_more_run() -> None:
        nonlocal runs
        runs += 1
        bar.update(runs, _best_so_far(rows))

    # Every config a study serves, over every seed: one population where they can share it.
    trained: dict[int, list[FrozenTrial]] = {}
    for study in {id(s): s for s in served.values()}.values():
        mine = [i for i, config in enumerate(configs) if served.get(config.family) is study]
        every = retrain_many([configs[i] for i in mine], baselines[study.study_name], seeds,
                             manual, one_more_run)
        trained.update(zip(mine, every, strict=True))
    for i, config in enumerate(configs):
        server = served.get(config.family)
        rows.append({"name": config.name, "who": config.who, "family": config.family,
                     "study": server.study_name if server else None,
                     **_summary(trained.get(i, []))})
    bar.update(len(configs) * len(seeds), _best_so_far(rows))
    return pd.DataFrame(rows, columns=["name", "who", "family", "study", "mean_r2", "sd_r2",
                                       "seeds", "diverged", "epochs"])


def _best_so_far(rows: list[dict[str, Any]]) -> str:
    means = [row for row in rows if not math.isnan(row["mean_r2"])]
    if not means:
        return ""
    best = max(means, key=lambda row: row["mean_r2"])
    return f"best mean R² {best['mean_r2']:.4f} ({best['name']})"


def _summary(trials: list[FrozenTrial]) -> dict[str, Any]:
    values = [t.value for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    diverged = len(trials) - len(values)
    mean = statistics.fmean(values) if values and not diverged else math.nan
    sd = statistics.stdev(values) if len(values) > 1 and not diverged else math.nan
    return {"mean_r2": mean, "sd_r2": sd, "seeds": len(trials), "diverged": diverged,
            "epochs": sum(epochs_run(t) for t in trials)}


def _family_row(family: str, optuna_study: optuna.Study | None,
                scores: pd.DataFrame) -> dict[str, Any]:
    mine = scores[scores["family"] == family]
    row: dict[str, Any] = {"family": family, "manual_configs": len(mine),
                           "epochs_manual": int(mine["epochs"].sum())}
    if optuna_study is None:
        return row
    trials = sorted(optuna_study.get_trials(deepcopy=False), key=lambda t: t.number)
    row.update(study=optuna_study.study_name, trials_auto=len(trials),
               epochs_auto_total=sum(epochs_run(t) for t in trials))
    ranked = mine.dropna(subset=["mean_r2"]).sort_values("mean_r2", ascending=False,
                                                          kind="stable")
    row["_ranked"] = ranked
    if not ranked.empty:
        best = ranked.iloc[0]
        row.update(best_manual=best["name"], best_manual_who=best["who"],
                   best_manual_r2=float(best["mean_r2"]), best_manual_sd=float(best["sd_r2"]))
    return {**row, **_search_side(trials, family, row.get("best_manual_r2"))}


def _search_side(trials: list[FrozenTrial], family: str, target: float | None) -> dict[str, Any]:
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None
                and t.user_attrs.get("family") == family]
    if not complete:
        return {}
    best = max(complete, key=_value)
    row: dict[str, Any] = {"best_auto_r2": best.value, "best_auto_trial": best.number}
    beat = next((t for t in complete if target is not None and _value(t) > target), None)
    if beat is not None:
        row.update(trials_to_beat=beat.number + 1, beaten_by_trial=beat.number,
                   epochs_auto_to_beat=sum(epochs_run(t) for t in trials
                                           if t.number <= beat.number))
    return row


def _value(trial: FrozenTrial) -> float:
    return -math.inf if trial.value is None else float(trial.value)


def _keep_record(manual: optuna.Study, baselines: list[Baseline], path: str | Path) -> None:
    # With one set of folds behind every manual trial, the manual study gets a record like
    # a study hpo ran, so `hpo export` and `hpo report` can rebuild its folds too.
    if any(b.folds_key != baselines[0].folds_key for b in baselines):
        return
    write_record(manual, {
        **baselines[0].record, "sampler": "manual", "pruner": "none",
        "description": f"hand-picked configs of {Path(path).name}, re-trained by hpo compare"})


def write_outputs(out: Path, table: pd.DataFrame, served: dict[str, optuna.Study]) -> None:
    """``compare.md`` (the family table, then one row per config) and ``compare.png``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(markdown(table), encoding="utf-8")
    plot(table, served, out / "compare.png")
