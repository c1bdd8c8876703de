"""What ``hpo run`` does once its flags are read: run each study, print its leaderboard.

Apart from `hpo.cli.run` so that ``hpo run --help`` loads none of torch, Optuna or pandas.
"""

from __future__ import annotations

import argparse
import math
import signal
import textwrap
from typing import Any

import optuna
import pandas as pd

from hpo.cli._args import WIDTH
from hpo.errors import ConfigError, HPOError
from hpo.results.holdout import score_best_on_test
from hpo.results.tables import leaderboard, load_study
from hpo.runners.options import RunOptions
from hpo.runners.optuna_runner import run
from hpo.store.attrs import trial_params
from hpo.store.record import score_label, stored_record
from hpo.store.storage import dashboard_command, open_storage
from hpo.store.summary import (
    best_trial,
    best_value,
    counts_text,
    failure_summary,
    finished_count,
    state_counts,
)
from hpo.study.config import Study
from hpo.study.file import load_studies, select_studies
from hpo.train.threads import torch_threads


def execute(args: argparse.Namespace, options: RunOptions) -> int:
    """Run the studies the flags name with ``options``; 0 when all ran."""
    # SIGTERM (a scheduler, `kill`) stops a run as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    studies = _chosen_studies(args)
    finished = []
    for study in studies:
        before = _finished_so_far(study.name, args.storage)
        try:
            optuna_study = run(study, options)
        except KeyboardInterrupt:  # what finished so far, before the CLI says "interrupted"
            _print_study(study, _stored(study, args.storage), args.top, ran=None,
                         threads=options.threads_per_process)
            raise
        _print_study(study, optuna_study, args.top, ran=finished_count(optuna_study) - before,
                     threads=options.threads_per_process)
        finished.append(optuna_study)
    if len(finished) > 1:
        print(_summary_table(finished))
    print(f"\nOpen the dashboard: {dashboard_command(args.storage)}")
    return 0


def _stored(study: Study, storage: str | None) -> optuna.Study:
    return optuna.load_study(study_name=study.name, storage=open_storage(storage))


def _chosen_studies(args: argparse.Namespace) -> list[Study]:
    studies = load_studies(args.study_file)
    if args.study_name and len(studies) > 1:
        studies = select_studies(studies, [args.study_name])
    overrides = {key: value for key, value in (
        ("sampler", args.sampler), ("pruner", args.pruner), ("n_trials", args.n_trials),
        ("timeout", args.timeout), ("seed", args.seed),
        ("name", args.study_name if len(studies) == 1 else None)) if value is not None}
    if args.sampler not in (None, "grid"):
        overrides["grid"] = None  # searched with another sampler, a grid study is a space
    return [study.replace(**overrides) for study in studies]


def _finished_so_far(name: str, storage: str | None) -> int:
    try:
        return finished_count(load_study(name, storage))
    except HPOError:  # no storage or no such study yet: a first run
        return 0


def _print_study(study: Study, optuna_study: optuna.Study, top: int, ran: int | None,
                 threads: int) -> None:
    """The study's counts, failures and leaderboard; ``ran``: trials this run finished
    (None when it was interrupted: whatever it finished, the study is not what it asked);
    the best trial's refit trains with ``threads`` torch threads, as the workers did."""
    print(f"\n== {study.name}: {_counts(optuna_study)}")
    failures = failure_summary(optuna_study)
    if failures:
        print(failures)
    if ran == 0:
        print(f"Nothing new ran: the study already held its {finished_count(optuna_study)} "
              "finished trials (raise --n-trials to extend it).")
    board = leaderboard(optuna_study, top=top)
    if board.empty:
        print("No complete trial: every trial was pruned or failed.")
        return
    label = score_label(stored_record(optuna_study))
    print(_fit_to_terminal(board, label))
    best = best_trial(optuna_study)
    print(f"best score ({label}): {best.value:.4f}  (trial {best.number})")
    print(textwrap.fill(f"best params: {_short(best.params or trial_params(best), full=True)}",
                        width=WIDTH, subsequent_indent="  "))
    with torch_threads(threads):
        held_out = score_best_on_test(optuna_study)
    if held_out is not None:
        print(textwrap.fill(
            f"held-out test R² of trial {best.number}, scored once after the search "
            f"(refit on the non-test rows): {held_out['test_r2']:.4f}", width=WIDTH))


def _fit_to_terminal(board: pd.DataFrame, label: str, most_columns: int = 4) -> str:
    """The leaderboard in at most WIDTH columns: a column per searched param when they fit,
    else one folded ``params`` column, cut with "…" (the full params: trials.csv, hpo report)."""
    params = [c for c in board.columns if c.startswith("params_")]
    table = board.rename(columns={"number": "trial", "value": label,
                                  "epochs_run": "epochs run"})
    # Four decimals for every score, as the best-score line prints it ("0.9860", not "0.986").
    table[label] = [f"{value:.4f}" for value in table[label]]
    text = _render(table.rename(columns={c: c.removeprefix("params_") for c in params}))
    if len(params) <= most_columns and _widest(text) <= WIDTH:
        return text
    folded = [_short({c.removeprefix("params_"): row[c] for c in params if pd.notna(row[c])})
              for _, row in board.iterrows()]
    return _with_text_column(_render(table.drop(columns=params)), "params", folded)


def _with_text_column(text: str, header: str, cells: list[str]) -> str:
    """A left-aligned text column appended to a rendered table, cut to fit WIDTH."""
    lines = text.splitlines()
    left = max(len(line) for line in lines) + 2
    room = WIDTH - left
    cut = [cell if len(cell) <= room else cell[:room - 1] + "…" for cell in [header, *cells]]
    return "\n".join(f"{line:<{left}}{cell}" for line, cell in zip(lines, cut, strict=True))


def _render(table: pd.DataFrame) -> str:
    with pd.option_context("display.width", 10 * WIDTH, "display.max_columns", 50,
                           "display.max_colwidth", 10 * WIDTH,
                           "display.float_format", "{:.4g}".format):
        return table.to_string(index=False)


def _widest(text: str) -> int:
    return max(len(line.rstrip()) for line in text.splitlines())


def _counts(optuna_study: optuna.Study) -> str:
    counts = state_counts(optuna_study)
    return counts_text({k: counts[k] for k in ("complete", "pruned", "failed")})


def _summary_table(studies: list[optuna.Study]) -> str:
    rows = []
    for optuna_study in studies:
        value = best_value(optuna_study)
        try:
            params = best_trial(optuna_study).params
        except ConfigError:
            params = {}
        rows.append({"study": optuna_study.study_name,
                     "best R²": "-" if math.isnan(value) else f"{value:.4f}",
                     "scored on": score_label(stored_record(optuna_study)),
                     "trials": _counts(optuna_study), "best params": _short(params)})
    table = pd.DataFrame(rows)
    text = _with_text_column(table.drop(columns="best params").to_string(index=False),
                             "best params", list(table["best params"]))
    return "\n== Best per study\n" + text


def _short(params: dict[str, Any], full: bool = False) -> str:
    """``lr=0.0867, width=20``: 3 significant digits, or every digit with ``full``."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) and not full else f"{k}={v}"
                     for k, v in params.items())
