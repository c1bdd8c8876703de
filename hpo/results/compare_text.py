"""``compare.md``: the verdict, the search per family, then every hand-picked config.

The table comes from `hpo.results.compare.compare`; this module only writes it as text.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from hpo.results.markdown import table as markdown_table


def markdown(table: pd.DataFrame) -> str:
    """The comparison as Markdown: the verdict, the search per family, then every config."""
    configs: pd.DataFrame = table.attrs["configs"]
    seeds = int(configs["seeds"].max()) if len(configs) else 0
    label = next((str(c) for c in table["chosen_on"] if isinstance(c, str)), "R²")
    families = [[r.family, "no study given" if missing(r.study) else r.study,
                 _who(r.best_manual, r.best_manual_who), _r2(r.best_manual_r2, r.best_manual_sd),
                 _best_auto(r), _beat(r),
                 _int(r.epochs_manual), _int(r.epochs_auto_to_beat), _int(r.epochs_auto_total)]
                for r in table.itertuples()]
    rows = [[c.name, c.who, c.family, "-" if missing(c.study) else c.study,
             _r2(c.mean_r2, c.sd_r2, c.diverged), _int(c.epochs)] for c in configs.itertuples()]
    return "\n".join([
        f"## Verdict on the held-out test part (mean ± sd over seeds 0-{seeds - 1})", "",
        markdown_table(["family", "best hand-picked", "its test R²", "search's best", "its test R²",
                   "difference (95% CI)", "verdict"], _verdict_rows(table)),
        "", markdown_table(["family", "side", "config", f"chosen on ({label})", "test R²"],
                      _test_rows(table.attrs.get("test"))),
        "", f"## The search, per family ({label}; hand-picked: mean ± sd over {seeds} seeds)",
        "", markdown_table(["family", "study", "best manual (who)", "manual", "best search",
                       "trials to beat", "epochs manual", "epochs search to beat",
                       "epochs search total"], families),
        "", "## Every hand-picked config", "",
        markdown_table(["config", "who", "family", "study", label, "epochs"], rows), ""])


def _verdict_rows(table: pd.DataFrame) -> list[list[Any]]:
    return [[r.family, _who(r.best_manual, r.best_manual_who),
             _r2(r.test_manual, r.test_manual_sd),
             "-" if missing(r.best_auto_trial) else f"trial {_int(r.best_auto_trial)}",
             _r2(r.test_search, r.test_search_sd), _difference(r),
             "-" if missing(r.verdict) else r.verdict] for r in table.itertuples()]


def _difference(row: Any) -> str:
    if missing(row.diff):
        return "-"
    if missing(row.ci_low):
        return f"{row.diff:+.5f}"
    return f"{row.diff:+.5f} ({row.ci_low:+.5f} to {row.ci_high:+.5f})"


def _test_rows(tested: pd.DataFrame | None) -> list[list[Any]]:
    if tested is None:
        return []
    return [[t.family, t.side, t.name, f"{t.chosen_r2:.4f}", _r2(t.test_mean, t.test_sd)]
            for t in tested.itertuples()]


def missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _who(name: Any, who: Any) -> str:
    return "-" if missing(name) else f"{name} ({who})"


def _r2(mean: Any, sd: Any, diverged: Any = 0) -> str:
    if not missing(diverged) and diverged:
        return f"diverged ({int(diverged)} seeds)"
    if missing(mean):
        return "-"
    return f"{mean:.4f}" + ("" if missing(sd) else f" ± {sd:.4f}")


def _best_auto(row: Any) -> str:
    return "-" if missing(row.best_auto_r2) else (
        f"{row.best_auto_r2:.4f} (trial {int(row.best_auto_trial)})")


def _beat(row: Any) -> str:
    if missing(row.best_auto_r2) or missing(row.best_manual_r2):
        return "-"
    if missing(row.trials_to_beat):
        return f"not beaten ({int(row.trials_auto)} trials)"
    return f"{int(row.trials_to_beat)} of {int(row.trials_auto)}"


def _int(value: Any) -> str:
    return "-" if missing(value) else str(int(value))
