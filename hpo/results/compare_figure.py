"""``compare.png``: the search's best-so-far curve against the hand-picked configs.

The table comes from `hpo.results.compare.compare`; this module only draws it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from hpo.results.compare_text import missing
from hpo.store.attrs import epochs_run

# The y axis spans at least this much R², from the search's lower quartile up, and every
# gap is drawn next to the seed spread at the same scale: a few ten-thousandths then look
# as small as they are (an axis zoomed onto the top made fourth-decimal gaps look decisive).
MIN_SPAN = 0.02
# Named colours, not the style's cycle (ggplot's first colour is red, the "beats" mark's).
_SEARCH, _BEST, _OTHER, _BEATS = "tab:blue", "tab:orange", "0.35", "tab:red"


def plot(table: pd.DataFrame, served: dict[str, optuna.Study], path: Path) -> None:
    """``figure(table, served)`` saved to ``path`` at 1280×720, in the report's style."""
    from hpo.results.plots import PROJECTOR_DPI, PROJECTOR_STYLE, plt  # matplotlib on demand

    with plt.style.context(["ggplot", PROJECTOR_STYLE]):
        drawn = figure(table, served)
        drawn.savefig(path, dpi=PROJECTOR_DPI)
        plt.close(drawn)


def figure(table: pd.DataFrame, served: dict[str, optuna.Study]) -> Any:
    """Best-so-far score against trials (top row) and against epochs spent (bottom row),
    one column per family. Each hand-picked config is an error bar (mean ± sd over its
    seeds) right of the search; the best one's band runs across the panel, so the search's
    curve can be read against its seed spread."""
    from hpo.results.plots import plt

    shown: list[Any] = [r for r in table.itertuples() if isinstance(r.study, str)] or [None]
    drawn, axes = plt.subplots(2, len(shown), squeeze=False, layout="constrained")
    for column, row in enumerate(shown):
        for line, by in enumerate(("trials", "epochs")):
            if row is None:
                axes[line, column].set_visible(False)
                continue
            _plot_family(axes[line, column], row, served[str(row.family)],
                         table.attrs["configs"], by)
    label = next((str(r.chosen_on) for r in shown
                  if r is not None and isinstance(r.chosen_on, str)), "R²")
    seeds = int(table.attrs["configs"]["seeds"].max()) if len(table.attrs["configs"]) else 0
    drawn.suptitle(f"Search (best so far) vs hand-picked configs ({label}; "
                   f"hand-picked: mean ± sd over {seeds} seeds)")
    drawn.legend(handles=_legend_handles(), loc="outside lower center", ncols=4, frameon=False,
                 fontsize=11, columnspacing=1.2, handletextpad=0.4)
    return drawn


def _legend_handles() -> list[Any]:
    """One legend for every panel: what each mark means, not which config (too many names
    for a projected figure; compare.md names them all)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return [Line2D([], [], ls="", marker="o", color="0.6", label="search trial"),
            Line2D([], [], ls="", marker="v", color="0.6", label="trial below the axis"),
            Line2D([], [], color=_SEARCH, lw=2.5, label="search: best so far"),
            Line2D([], [], ls="", marker="o", color=_BEATS, ms=9,
                   label="first above best hand-picked"),
            Patch(color=_BEST, alpha=0.3, label="best hand-picked: mean ± sd"),
            Line2D([], [], ls="", marker="o", color=_OTHER,
                   label="other hand-picked: mean ± sd"),
            Line2D([], [], ls=":", color="0.3", label="search | hand-picked")]


def _plot_family(ax: Any, row: Any, optuna_study: optuna.Study, configs: pd.DataFrame,
                 by: str = "trials") -> None:
    trials = sorted(optuna_study.get_trials(deepcopy=False), key=lambda t: t.number)
    # x of a trial: its count (trial number + 1), or the epochs spent up to its end.
    spent = pd.Series([epochs_run(t) for t in trials]).cumsum().tolist()
    x_of = {t.number: (spent[i] if by == "epochs" else t.number + 1)
            for i, t in enumerate(trials)}
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None
            and t.user_attrs.get("family") == row.family]
    values = [float(t.value or 0.0) for t in done]
    bottom, top = _y_range(values, configs, row.family)
    ax.scatter([x_of[t.number] for t in done], values, s=22, color="0.6", zorder=2)
    _mark_below(ax, [x_of[t.number] for t in done], values, bottom)
    # Carried over pruned and failed trials too: the search spent them.
    running = pd.Series({x_of[t.number]: t.value for t in done}, dtype=float).cummax().reindex(
        [x_of[t.number] for t in trials]).ffill()
    ax.step(running.index, running.to_numpy(), where="post", color=_SEARCH, lw=2.5, zorder=3)
    end = max(x_of.values(), default=1)
    _draw_configs(ax, configs, row.family, end)
    if not missing(row.beaten_by_trial):
        beat = next(t for t in done if t.number == int(row.beaten_by_trial))
        ax.plot([x_of[beat.number]], [beat.value], "o", color=_BEATS, ms=9, zorder=5)
    ax.set_ylim(bottom, top)
    ax.set_xlabel("trials run" if by == "trials" else "training epochs spent")
    if by == "trials":
        ax.set_title(_title(row), fontsize=11.5)
    if ax.get_subplotspec().is_first_col():
        ax.set_ylabel(row.chosen_on if isinstance(row.chosen_on, str) else "R²")


def _title(row: Any) -> str:
    """``cosine (lr-cosine)`` over ``search 0.9863 · by hand 0.9859±0.0004`` (fits a third
    of the 1280-pixel canvas at the title size)."""
    parts = []
    if not missing(row.best_auto_r2):
        parts.append(f"search {float(row.best_auto_r2):.4f}")
    if not missing(row.best_manual_r2):
        sd = 0.0 if missing(row.best_manual_sd) else float(row.best_manual_sd)
        parts.append(f"by hand {float(row.best_manual_r2):.4f}±{sd:.4f}")
    return f"{row.family} ({row.study})\n" + " · ".join(parts)


def _draw_configs(ax: Any, configs: pd.DataFrame, family: str, end: float) -> None:
    """Each config's mean ± sd as an error bar in a strip right of the search (x past its
    end); the best config's band also across the search, to read the curve against."""
    mine = configs[(configs["family"] == family) & configs["mean_r2"].notna()].sort_values(
        "mean_r2", ascending=False)
    step = 0.06 * end
    ax.axvline(end + step, color="0.3", ls=":", lw=1.2)
    means, sds = mine["mean_r2"].astype(float), mine["sd_r2"].astype(float).fillna(0.0)
    for i, (mean, sd) in enumerate(zip(means, sds, strict=True)):
        if i == 0:
            ax.axhspan(mean - sd, mean + sd, color=_BEST, alpha=0.3, lw=0, zorder=1)
        ax.errorbar([end + step * (2 + i)], [mean], yerr=[sd], fmt="o", ms=6,
                    elinewidth=2.5, capsize=6, capthick=2, color=_BEST if i == 0 else _OTHER,
                    zorder=4)
    ax.set_xlim(right=end + step * (3 + max(len(mine) - 1, 0)))
    # No trial or epoch count under the hand-picked strip: its x is not a count.
    ax.set_xticks([tick for tick in ax.get_xticks() if 0 <= tick <= end])


def _y_range(values: list[float], configs: pd.DataFrame, family: str) -> tuple[float, float]:
    """From the search's lower quartile (or the lowest config, mean - sd) to just above the
    best, and at least MIN_SPAN high; never above R² 1."""
    mine = configs[(configs["family"] == family) & configs["mean_r2"].notna()]
    sd = mine["sd_r2"].fillna(0.0)
    tops = [*values, *(mine["mean_r2"] + sd)]
    if not tops:
        return 0.0, 1.0
    lows = [*(mine["mean_r2"] - sd)]
    if values:
        lows.append(float(pd.Series(values).quantile(0.25)))
    high = max(tops)
    low = min(lows) if lows else high
    top = min(1.0, high + 0.1 * max(high - low, MIN_SPAN))
    return min(low, top - MIN_SPAN), top


def _mark_below(ax: Any, xs: list[float], values: list[float], bottom: float) -> None:
    """Trials below the axis as small ticks on its bottom edge: spent, but off the scale."""
    low = [x for x, v in zip(xs, values, strict=True) if v < bottom]
    if low:
        ax.plot(low, [bottom] * len(low), "v", color="0.6", ms=6, clip_on=False, zorder=2)
