"""Matplotlib figures of a stored study, one function per figure, each returning a Figure.

Optuna's own matplotlib views are used where they exist (optimization history, parameter
importances, slice); the others (pruned learning curves, learning-rate schedules, the best
model's prediction, its MSE curves) are drawn here from what every trial stores. A figure
that the study cannot support raises FigureSkipped with the reason, for the report to note.
Callers save and close the figures; ``hpo.results.report`` draws them all under one style.

Example:
    >>> study = load_study("lr-cosine")                        # doctest: +SKIP
    >>> optimization_history(study).savefig("history.png")     # doctest: +SKIP
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np

if "matplotlib.pyplot" not in sys.modules:  # leave a notebook's interactive backend alone
    matplotlib.use("Agg")

# Imported after matplotlib.use: the backend must be chosen before pyplot loads.
import matplotlib.pyplot as plt
import optuna
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter
from optuna.trial import FrozenTrial, TrialState

from hpo.data import RegressionData
from hpo.results.tables import trial_history
from hpo.store.attrs import read_record, trial_params
from hpo.store.record import score_label
from search_spaces import lr_curve

R2 = "test R²"  # what a study without an hpo record (or a test's study) is scored on
# Every figure readable when projected at 1280×720: that canvas (11.6 × 6.5 in at 110 dpi),
# and text sized for the back of a classroom (the report's figures and compare.png).
PROJECTOR_DPI = 110
PROJECTOR_STYLE = {"figure.figsize": (11.6, 6.5), "font.size": 14, "axes.titlesize": 15,
                   "axes.labelsize": 14, "legend.fontsize": 12, "xtick.labelsize": 12,
                   "ytick.labelsize": 12, "figure.titlesize": 16, "lines.markersize": 7}
# R² has no lower bound; one diverged trial at -50 would flatten every other curve.
R2_FLOOR = -1.0
TOP_PER_FAMILY = 3
SLICE_PANELS = 4


class FigureSkipped(Exception):
    """The study lacks what a figure needs; the message says what, for the report."""


@dataclass(frozen=True)
class Prediction:
    """The best trial's model retrained on the study's first fold, ready to draw."""

    trial: int
    train: RegressionData
    test: RegressionData
    predict: Callable[[np.ndarray], np.ndarray]  # x (n, features) -> y (n,)
    test_r2: float
    where: str = ""  # e.g. "fold 1 of 3" for a cross-validated study
    scored: str = "test"  # the part the R² is of: "validation", "3-fold CV" or "test"


def score_name(study: optuna.Study) -> str:
    """What the study's trials were scored on, as the axes say it: ``validation R²`` by
    default, ``3-fold CV R²``, or ``test R²`` (the lab's setting, or no hpo record)."""
    record = read_record(study)
    return score_label(record) if record else R2


def scored_part(study: optuna.Study) -> str:
    """``validation``, ``3-fold CV`` or ``test``: the part of a fold a trial is scored on."""
    return score_name(study).removesuffix(" R²")


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def optimization_history(study: optuna.Study) -> Figure:
    """Every complete trial's score and the best so far, by trial number (Optuna's view)."""
    complete = complete_trials(study)
    if not complete:
        raise FigureSkipped("no complete trial yet (every trial was pruned or failed)")
    label = score_name(study)
    ax = _optuna_axes(optuna.visualization.matplotlib.plot_optimization_history,
                      study, target_name=label)
    ax.set_title(f"Best {label} so far ({len(complete)} complete trials)")
    ax.legend(loc="lower right")  # Optuna puts it outside, off a projected slide
    _clip_outliers(ax, [(t.number, _value(t)) for t in complete])
    return _figure(ax)


def intermediate_values(study: optuna.Study, step: str = "epoch") -> Figure:
    """The score per ``step`` of every trial; pruned trials dashed in red, ending where cut."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.intermediate_values]
    if not trials:
        raise FigureSkipped("no trial reported an intermediate R²")
    label = score_name(study)
    fig, (ax, zoom) = plt.subplots(1, 2, layout="constrained",
                                   gridspec_kw={"width_ratios": (1, 1.3)})
    best = max(complete_trials(study), key=_value, default=None)
    for panel in (ax, zoom):
        for trial in sorted(trials, key=lambda t: t is best):  # the best drawn last, on top
            _draw_curve(panel, trial, is_best=trial is best)
        panel.set(xlabel=step, ylabel=label)
        panel.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("every value")
    _floor_r2(ax, [v for t in trials for v in t.intermediate_values.values()])
    low, high = _decision_band(trials)
    zoom.set_ylim(low, high)
    zoom.set_title(f"zoom on the top ({low:.3f} to {high:.3f}): where good trials differ")
    ax.axhspan(low, high, color="gold", alpha=0.35, lw=0, label="zoomed at right")
    fig.suptitle(f"{label[:1].upper()}{label[1:]} per {step}: {_state_counts(trials)} "
                 "(x: where a pruned trial stopped)")
    _dedupe_legend(ax, loc="lower right")
    return fig


def _decision_band(trials: Sequence[FrozenTrial]) -> tuple[float, float]:
    """The R² range where the good trials end and pruning has to tell them apart: from the
    median of the trials' last values (half of them end in it) to the highest value."""
    last = [t.intermediate_values[max(t.intermediate_values)] for t in trials]
    finite = [v for v in last if math.isfinite(v)]
    values = [v for t in trials for v in t.intermediate_values.values() if math.isfinite(v)]
    top = max(values)
    low = float(np.median(finite)) if finite else top - 0.1
    low = min(low, top - 0.005)  # never a band too thin to see
    margin = (top - low) * 0.15
    return low - margin, top + margin


_CURVE_STYLES: dict[str, dict[str, Any]] = {
    "best": {"color": "tab:green", "lw": 2.5, "label": "best trial"},
    "COMPLETE": {"color": "tab:blue", "lw": 1, "alpha": 0.6, "label": "complete"},
    "PRUNED": {"color": "tab:red", "lw": 1, "ls": "--", "alpha": 0.8, "label": "pruned"},
}
_OTHER_STYLE = {"color": "tab:gray", "lw": 1, "ls": ":", "label": "failed or running"}


def _draw_curve(ax: Axes, trial: FrozenTrial, *, is_best: bool) -> None:
    steps = sorted(trial.intermediate_values)
    values = [trial.intermediate_values[s] for s in steps]
    style = _curve_style(trial, is_best)
    ax.plot(steps, values, **style)
    if trial.state == TrialState.PRUNED:  # mark where the pruner stopped it
        ax.plot(steps[-1:], values[-1:], "x", color=style["color"], ms=7)


def _curve_style(trial: FrozenTrial, is_best: bool) -> dict[str, Any]:
    if is_best:
        return {**_CURVE_STYLES["best"], "label": f"best (trial {trial.number})"}
    return _CURVE_STYLES.get(trial.state.name, _OTHER_STYLE)


def _state_counts(trials: Sequence[FrozenTrial]) -> str:
    states = [t.state.name.lower() for t in trials]
    return ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))


def lr_curves(study: optuna.Study, top: int = TOP_PER_FAMILY) -> Figure:
    """The learning rate per epoch of the ``top`` complete trials of each scheduler family."""
    families = _top_by_family(complete_trials(study), top)
    curves = {family: [(t, c) for t in trials if (c := _lr_of(t))]
              for family, trials in families.items()}
    curves = {family: pairs for family, pairs in curves.items() if pairs}
    if not curves:
        raise FigureSkipped("no complete trial stores a learning-rate schedule")
    fig, axes = grid(len(curves))
    label = score_name(study)
    for ax, (family, pairs) in zip(axes, curves.items(), strict=False):
        for trial, curve in pairs:
            ax.plot(range(1, len(curve) + 1), curve,
                    label=f"trial {trial.number} ({label} {_value(trial):.3f})")
        if all(v > 0 for _, curve in pairs for v in curve):
            ax.set_yscale("log")
        ax.set(title=family, xlabel="epoch", ylabel="learning rate")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    fig.suptitle(f"Learning rate per epoch, top {top} trials of each scheduler family")
    return fig


def _top_by_family(trials: Sequence[FrozenTrial], top: int) -> dict[str, list[FrozenTrial]]:
    by_family: dict[str, list[FrozenTrial]] = {}
    for trial in sorted(trials, key=_value, reverse=True):
        family = str(trial.user_attrs.get("family", trial_params(trial).get("scheduler")))
        by_family.setdefault(family, [])
        if len(by_family[family]) < top:
            by_family[family].append(trial)
    return by_family


def _lr_of(trial: FrozenTrial) -> list[float]:
    """The planned schedule; the stored per-epoch ``lr`` when the params cannot rebuild it."""
    params = trial_params(trial)
    try:
        return lr_curve(params, epochs=int(params["epochs"]))
    except (KeyError, TypeError, ValueError):
        history = trial_history(trial)
        return [float(v) for v in history["lr"]] if "lr" in history else []


def prediction(fit: Prediction) -> Figure:
    """The data with the model's prediction: a curve over x for one feature, else y vs ŷ."""
    fig, ax = plt.subplots()
    if fit.train.n_features == 1:
        _draw_curve_fit(ax, fit)
    else:
        _draw_predicted_vs_actual(ax, fit)
    where = f" on {fit.where}" if fit.where else ""
    ax.set_title(f"Best model's prediction (trial {fit.trial}, retrained{where}: "
                 f"{fit.scored} R² {fit.test_r2:.4f})")
    ax.legend()
    return fig


def _draw_curve_fit(ax: Axes, fit: Prediction) -> None:
    ax.scatter(fit.train.x[:, 0], fit.train.y[:, 0], s=10, alpha=0.5, label="train")
    ax.scatter(fit.test.x[:, 0], fit.test.y[:, 0], s=10, alpha=0.7, label=fit.scored)
    x_all = np.concatenate([fit.train.x[:, 0], fit.test.x[:, 0]])
    grid = np.linspace(x_all.min(), x_all.max(), 400, dtype=np.float32)[:, None]  # (400, 1)
    ax.plot(grid[:, 0], fit.predict(grid), color="black", lw=2, label="prediction")
    ax.set(xlabel=fit.train.feature_names[0], ylabel=fit.train.target_name)


def _draw_predicted_vs_actual(ax: Axes, fit: Prediction) -> None:
    for part, name in ((fit.train, "train"), (fit.test, fit.scored)):
        ax.scatter(part.y[:, 0], fit.predict(part.x), s=14, alpha=0.7, label=name)
    y_all = np.concatenate([fit.train.y[:, 0], fit.test.y[:, 0]])
    line = [float(y_all.min()), float(y_all.max())]
    ax.plot(line, line, color="black", lw=1, ls="--", label="perfect prediction")
    target = fit.train.target_name
    ax.set(xlabel=f"actual {target}", ylabel=f"predicted {target}")


def mse_curves(trial: FrozenTrial, scored: str = "test") -> Figure:
    """Train and ``scored`` MSE per epoch of one trial, from its stored history (``scored``:
    the part its ``test_mse`` is of, ``scored_part(study)``)."""
    history = trial_history(trial)
    if not {"epoch", "train_mse", "test_mse"} <= set(history.columns):
        raise FigureSkipped(f"trial {trial.number} stores no per-epoch MSE (a cross-validated "
                            "study stores one row per fold)")
    fig, ax = plt.subplots()
    ax.plot(history["epoch"], history["train_mse"], marker=".", label="train MSE")
    ax.plot(history["epoch"], history["test_mse"], marker=".", label=f"{scored} MSE")
    values = [*history["train_mse"], *history["test_mse"]]
    if min(values) > 0 and max(values) / min(values) > 20:  # early epochs dwarf the rest
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="epoch", ylabel="MSE",
           title=f"Train and {scored} MSE per epoch, best trial ({trial.number})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    return fig


def param_importances(study: optuna.Study) -> Figure:
    """How much each searched param explains the score (Optuna's default evaluator)."""
    complete = complete_trials(study)
    if len(complete) < 2:
        raise FigureSkipped(f"needs at least 2 complete trials; the study has {len(complete)}")
    if not any(t.params for t in complete):
        raise FigureSkipped("no param was searched (every value was fixed)")
    label = score_name(study)
    ax = _optuna_axes(optuna.visualization.matplotlib.plot_param_importances,
                      study, target_name=label)
    ax.set_title(f"Parameter importances for {label}", loc="left")  # Optuna's own sits there
    return _figure(ax)


def slice_view(study: optuna.Study, most: int = SLICE_PANELS) -> Figure:
    """The score against each searched param, one panel per param (Optuna's slice plot); with
    more than ``most`` params, the ``most`` most important ones (a projected slide holds no
    more panels)."""
    complete = complete_trials(study)
    names = list(dict.fromkeys(name for t in complete for name in t.params))
    if not names:
        raise FigureSkipped("needs a complete trial with a searched param")
    label = score_name(study)
    label = f"{label[:1].upper()}{label[1:]}"
    title = f"{label} against each searched param (colour: trial number)"
    if len(names) > most:
        names = _most_important(study, names, most)
        title = (f"{label} against the {most} most important searched params "
                 "(colour: trial number)")
    axes = _optuna_axes(optuna.visualization.matplotlib.plot_slice, study, params=names,
                        target_name=score_name(study))
    fig = _figure(axes)
    fig.suptitle(title)
    panels = [ax for ax in fig.axes if ax.get_ylabel() != "Trial"]  # not the colour bar
    fig.set_size_inches(*plt.rcParams["figure.figsize"])  # Optuna's are cramped
    for ax in panels:  # tick labels on a narrow (log) axis overprint each other
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(axis="x", labelrotation=30)
    for ax in panels:
        name = ax.get_xlabel()
        _clip_outliers(ax, [(t.params[name], _value(t)) for t in complete
                            if isinstance(t.params.get(name), int | float)])
    return fig


def _most_important(study: optuna.Study, names: list[str], most: int) -> list[str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ranked = list(optuna.importance.get_param_importances(study))
    except (ValueError, RuntimeError):
        ranked = []
    return [*[n for n in ranked if n in names], *[n for n in names if n not in ranked]][:most]


def _optuna_axes(plot: Callable[..., Any], study: optuna.Study, **kwargs: Any) -> Any:
    # Optuna marks its matplotlib views experimental, and warns that importances from few
    # trials are rough; a report of a small study is still worth writing, without the noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)
        return plot(study, **kwargs)


def _figure(axes: Axes | np.ndarray) -> Figure:
    first = axes.flat[0] if isinstance(axes, np.ndarray) else axes
    figure = first.get_figure(root=True)
    if not isinstance(figure, Figure):
        raise TypeError(f"Expected Optuna's axes to sit on a Figure, but got {figure!r}.")
    return figure


def _floor_r2(ax: Axes, values: Sequence[float]) -> None:
    finite = [v for v in values if math.isfinite(v)]
    if finite and min(finite) < R2_FLOOR:
        ax.set_ylim(bottom=R2_FLOOR, top=max(1.0, max(finite)) + 0.05)
        ax.annotate(f"values below {R2_FLOOR:g} are cut off", xy=(0.01, 0.01),
                    xycoords="axes fraction", fontsize="small", color="dimgray")


def _dedupe_legend(ax: Axes, loc: Any = "best") -> None:
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys()).set_loc(loc)


def _clip_outliers(ax: Axes, points: Sequence[tuple[float, float]]) -> None:
    """Cut the y axis above far-low outliers (below Q1 - 3 IQR, or below R² -1) so they do
    not flatten the others, and draw each one as a red triangle on the bottom edge, noted.

    ``points`` are each trial's (x, R²).
    """
    finite = [v for _, v in points if math.isfinite(v)]
    if len(finite) < 4:  # too few for quartiles: only cut a diverged trial's R²
        _floor_r2(ax, finite)
        return
    q1, q3 = np.percentile(finite, [25, 75])
    fence = max(q1 - 3 * (q3 - q1), R2_FLOOR)
    low = [(x, v) for x, v in points if not v >= fence]
    if not low:
        return
    kept = [v for v in finite if v >= fence]
    top = max(kept)
    bottom = min(kept) - 0.08 * (top - min(kept) or 0.01)
    ax.set_ylim(bottom=bottom, top=top + 0.08 * (top - bottom))
    ax.plot([x for x, _ in low], [bottom] * len(low), "v", color="tab:red", ms=10, clip_on=False,
            zorder=5)
    worst = min(v for _, v in low)
    ax.annotate(f"▼ {len(low)} outlier{'s' if len(low) > 1 else ''} below the axis "
                f"(lowest {worst:.3g})", xy=(0.01, 0.02), xycoords="axes fraction",
                color="tab:red")


def grid(count: int) -> tuple[Figure, list[Axes]]:
    """A figure of ``count`` panels, three to a row; unused panels hidden."""
    columns = min(count, 3)
    rows = math.ceil(count / columns)
    width, height = plt.rcParams["figure.figsize"]  # the report's: a projected slide
    fig, axes = plt.subplots(rows, columns, figsize=(max(width, 5 * columns), height * rows),
                             squeeze=False, layout="constrained")
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _value(trial: FrozenTrial) -> float:
    return trial.value if trial.value is not None else float("-inf")
