"""Hand-picked configs against the automated search, per scheduler family.

Every config is re-trained over ``seeds`` seeds (0, 1, …) on the folds of the automated
study that serves its family, and each run is stored as a manual trial in the study
``<manual file stem>-manual``. Then, per family: the best manual config (by mean test R²)
against the search's best trial, how many trials the search needed to beat it, and the
training epochs each side spent.

Which study serves which family: the ``family`` attribute of its trials. A study whose
trials are all one family serves that family; a mixed-family study serves each family it
holds, judged on that family's trials, while its cost counts every trial it ran (the search
paid for all of them): "trials to beat" is the position in the study (trial number + 1) of
the first complete trial of the family whose R² exceeds the best manual mean, and its epochs
are the ``epochs_run`` of every trial up to that one. A family no given study serves gets a
row without numbers.

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
from hpo.results.manual import (
    Baseline,
    ManualConfig,
    load_manual,
    manual_study_name,
    open_manual_study,
    retrain,
)
from hpo.results.markdown import table as markdown_table
from hpo.results.tables import load_study
from hpo.store.record import write_record
from hpo.train.progress import Progress

COLUMNS = ("family", "study", "manual_configs", "best_manual", "best_manual_who",
           "best_manual_r2", "best_manual_sd", "best_auto_r2", "best_auto_trial", "trials_auto",
           "trials_to_beat", "beaten_by_trial", "epochs_manual", "epochs_auto_to_beat",
           "epochs_auto_total")
_COUNTS = ("manual_configs", "best_auto_trial", "trials_auto", "trials_to_beat",
           "beaten_by_trial", "epochs_manual", "epochs_auto_to_beat", "epochs_auto_total")


def compare(
    manual_path: str | Path,
    study_names: Sequence[str],
    storage: str | None = None,
    seeds: int = 3,
    out: str | Path | None = None,
    *,
    progress: bool = False,
) -> pd.DataFrame:
    """Re-train the hand-picked configs and compare them with the studies, one row a family.

    With ``out``, also writes ``compare.md`` (both tables) and ``compare.png`` there.
    ``frame.attrs["configs"]`` holds one row per config (mean ± sd over the seeds).
    With ``progress``, shows the configs re-trained so far and the best mean R² among them.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"`seeds` must be an int >= 1, but got {seeds!r}; pass e.g. 3.")
    configs = load_manual(manual_path)
    studies = [load_study(name, storage) for name in study_names]
    served = _served(studies, {c.family for c in configs})
    manual = open_manual_study(manual_study_name(manual_path), storage)
    baselines = {s.study_name: Baseline.of(s) for s in served.values()}
    bar = Progress(len(configs) * seeds, "hand-picked configs", unit="run", enabled=progress)
    try:
        scores = _scores(configs, served, baselines, list(range(seeds)), manual, bar)
    finally:
        bar.close()
    _keep_record(manual, list(baselines.values()), manual_path)
    table = pd.DataFrame([_family_row(family, served.get(family), scores)
                          for family in dict.fromkeys(c.family for c in configs)],
                         columns=list(COLUMNS)).astype({c: "Int64" for c in _COUNTS})
    table.attrs["configs"] = scores
    if out is not None:
        write_outputs(Path(out), table, served)
    return table


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

    for config in configs:
        study = served.get(config.family)
        trials = (retrain(config, baselines[study.study_name], seeds, manual, one_more_run)
                  if study else [])
        rows.append({"name": config.name, "who": config.who, "family": config.family,
                     "study": study.study_name if study else None, **_summary(trials)})
        runs = len(rows) * len(seeds)
        bar.update(runs, _best_so_far(rows))
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


def epochs_run(trial: FrozenTrial) -> int:
    """Epochs the trial trained (fewer when pruned or diverged; 0 when it never started)."""
    stored = trial.user_attrs.get("epochs_run")
    return int(stored) if stored is not None else len(trial.intermediate_values)


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
    ranked = mine.dropna(subset=["mean_r2"])
    if not ranked.empty:
        best = ranked.sort_values("mean_r2", ascending=False, kind="stable").iloc[0]
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


def markdown(table: pd.DataFrame) -> str:
    """The comparison as Markdown: per family, then per config."""
    configs: pd.DataFrame = table.attrs["configs"]
    seeds = int(configs["seeds"].max()) if len(configs) else 0
    families = [[r.family, "no study given" if _missing(r.study) else r.study,
                 _who(r.best_manual, r.best_manual_who), _r2(r.best_manual_r2, r.best_manual_sd),
                 _best_auto(r), _beat(r),
                 _int(r.epochs_manual), _int(r.epochs_auto_to_beat), _int(r.epochs_auto_total)]
                for r in table.itertuples()]
    rows = [[c.name, c.who, c.family, "-" if _missing(c.study) else c.study,
             _r2(c.mean_r2, c.sd_r2, c.diverged), _int(c.epochs)] for c in configs.itertuples()]
    return "\n".join([
        f"## Hand-picked vs automated search (manual: mean ± sd of test R² over {seeds} seeds)",
        "", markdown_table(["family", "study", "best manual (who)", "manual R²", "best search R²",
                       "trials to beat", "epochs manual", "epochs search to beat",
                       "epochs search total"], families),
        "", "## Every hand-picked config", "",
        markdown_table(["config", "who", "family", "study", "test R²", "epochs"], rows), ""])


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _who(name: Any, who: Any) -> str:
    return "-" if _missing(name) else f"{name} ({who})"


def _r2(mean: Any, sd: Any, diverged: Any = 0) -> str:
    if not _missing(diverged) and diverged:
        return f"diverged ({int(diverged)} seeds)"
    if _missing(mean):
        return "-"
    return f"{mean:.4f}" + ("" if _missing(sd) else f" ± {sd:.4f}")


def _best_auto(row: Any) -> str:
    return "-" if _missing(row.best_auto_r2) else (
        f"{row.best_auto_r2:.4f} (trial {int(row.best_auto_trial)})")


def _beat(row: Any) -> str:
    if _missing(row.best_auto_r2) or _missing(row.best_manual_r2):
        return "-"
    if _missing(row.trials_to_beat):
        return f"not beaten ({int(row.trials_auto)} trials)"
    return f"{int(row.trials_to_beat)} of {int(row.trials_auto)}"


def _int(value: Any) -> str:
    return "-" if _missing(value) else str(int(value))


def plot(table: pd.DataFrame, served: dict[str, optuna.Study], path: Path) -> None:
    """Best-so-far test R² against trial number per family, manual configs as lines."""
    from hpo.results.plots import grid, plt  # matplotlib loads only for the figure

    shown = [r for r in table.itertuples() if isinstance(r.study, str)]
    figure, axes = grid(max(1, len(shown)))
    for ax, row in zip(axes, shown, strict=False):
        _plot_family(ax, row, served[str(row.family)], table.attrs["configs"])
    figure.suptitle("Automated search (best so far) vs hand-picked configs (mean over seeds)")
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _plot_family(ax: Any, row: Any, optuna_study: optuna.Study, configs: pd.DataFrame) -> None:
    trials = sorted(optuna_study.get_trials(deepcopy=False), key=lambda t: t.number)
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None
            and t.user_attrs.get("family") == row.family]
    ax.scatter([t.number for t in done], [t.value for t in done], s=10, color="0.7",
               label="search trial (complete)")
    # Carried over pruned and failed trials too: the search spent them.
    running = pd.Series({t.number: t.value for t in done}, dtype=float).cummax().reindex(
        [t.number for t in trials]).ffill()
    ax.step(running.index, running.to_numpy(), where="post", color="C0", lw=2,
            label="search: best so far")
    mine = configs[(configs["family"] == row.family) & configs["mean_r2"].notna()]
    for i, config in enumerate(mine.sort_values("mean_r2", ascending=False).itertuples()):
        ax.axhline(config.mean_r2, color=f"C{i + 1}", ls="-" if i == 0 else "--",
                   lw=1.8 if i == 0 else 1.0,
                   label=f"{config.name} ({config.who}): {config.mean_r2:.4f}")
    if not _missing(row.beaten_by_trial):
        beat = next(t for t in done if t.number == int(row.beaten_by_trial))
        ax.plot([beat.number], [beat.value], "o", color="red", ms=8,
                label=f"beats best manual: trial {beat.number} ({int(row.trials_to_beat)} trials)")
    _focus(ax, [*mine["mean_r2"], *running.to_numpy()[-1:]])
    ax.set(title=f"{row.family} ({row.study})", xlabel="trial number", ylabel="test R²")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


def _focus(ax: Any, values: list[float]) -> None:
    # Early trials can score far below zero; the story is near the top, where they compete.
    if not values:
        return
    low, high = min(values), max(values)
    pad = max(0.005, high - low)
    ax.set_ylim(low - 1.5 * pad, min(1.0, high + 0.6 * pad))
