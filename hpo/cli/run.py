"""``hpo run STUDY_FILE``: run or resume the studies a study file defines."""

from __future__ import annotations

import argparse
import math
import signal
import textwrap
from dataclasses import fields
from typing import Any

import optuna
import pandas as pd

from hpo.cli import COMMANDS
from hpo.cli._args import WIDTH, add_storage_argument, positive_float, positive_int, wrapped
from hpo.errors import ConfigError, HPOError
from hpo.results.holdout import score_best_on_test
from hpo.results.tables import leaderboard, load_study
from hpo.runners.options import DEFAULT_MAX_RETRIES, DEFAULT_THREADS, MODES, RUNNERS, RunOptions
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
from hpo.study.algorithms import PRUNERS, RAY_PRUNERS, SAMPLERS
from hpo.study.config import Study
from hpo.study.file import load_studies, select_studies
from hpo.train.threads import torch_threads

EPILOG = """\
--n-trials is the number of finished trials (complete, pruned or failed) the study should
hold. Running the same study again resumes it: only the missing trials run, so a run cut
short is completed by repeating the command; raise --n-trials to extend a finished study.
A grid study runs each grid point exactly once (--n-trials does not apply).
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help=COMMANDS["run"], epilog=EPILOG,
        description=wrapped("Run (or resume) the studies a study file defines, then print a "
                            "leaderboard and the line that opens them in optuna-dashboard."),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study_file", help="a .py file defining STUDY or STUDIES")
    parser.add_argument("--study-name", help="with several studies in the file: run only this "
                        "one; with one: store it under this name")
    parser.add_argument("--sampler", choices=SAMPLERS,
                        help="override the study's sampler (a grid study searched by another "
                        "sampler searches its space and ignores its grid)")
    parser.add_argument("--pruner", choices=PRUNERS + RAY_PRUNERS,
                        help="override the study's pruner (asha: --runner ray only)")
    parser.add_argument("--n-trials", type=positive_int, help="finished trials the study "
                        "should hold (see below)")
    parser.add_argument("--timeout", type=positive_float, help="seconds after which no new "
                        "trial starts")
    parser.add_argument("--trial-timeout", type=positive_float, help="seconds after which "
                        "one trial is failed (reason: timeout) and the study goes on "
                        "(default: no limit)")
    parser.add_argument("--seed", type=int, help="override the study's seed")
    add_storage_argument(parser)
    _add_run_options(parser)
    parser.add_argument("--top", type=positive_int, default=5, help="leaderboard rows (default 5)")
    parser.set_defaults(handler=execute)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """The flags of ``RunOptions``. Each is None unless typed (``run_options`` passes only
    those typed), and its help shows RunOptions' own default."""
    default = {field.name: field.default for field in fields(RunOptions)}
    parser.add_argument("--workers", type=positive_int, help="worker processes (default: "
                        "--trials-per-device per GPU, else one per CPU core)")
    parser.add_argument("--devices", help="auto (every GPU, else the CPU), cpu, or "
                        f"cuda:0,cuda:1,... (default: {default['devices']})")
    parser.add_argument("--trials-per-device", type=positive_int, help="trials that share "
                        f"one device at a time (default: {default['trials_per_device']})")
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads of each "
                        "worker process, and of this process's refit after the search "
                        f"(default: {DEFAULT_THREADS}; --runner optuna only)")
    parser.add_argument("--runner", choices=RUNNERS, help="optuna: worker processes on this "
                        "machine; ray: trials on Ray, locally or on a cluster (default: "
                        f"{default['runner']})")
    parser.add_argument("--address", help="with --runner ray: auto or ray://host:port joins "
                        "a running Ray cluster (default: start Ray on this machine)")
    parser.add_argument("--max-retries", type=int, help="with --runner ray: times a "
                        f"crashing trial is run again (default: {DEFAULT_MAX_RETRIES})")
    parser.add_argument("--mode", choices=MODES,
                        help="auto: train trials of one batch size together as one batched "
                        "population (depth, width, activation, batch norm and epochs may "
                        "differ), a trial alone in its group one at a time (so are studies "
                        "with seeds > 1); population: batch every trial (but those of "
                        "studies with seeds > 1); single: one at a time "
                        f"(default: {default['mode']})")
    parser.add_argument("--population-size", type=positive_int, help="trials asked and "
                        f"trained at once per worker (default: {default['population_size']})")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                        help="no progress bar")


def run_options(args: argparse.Namespace) -> RunOptions:
    """The RunOptions of the flags typed; every other option keeps RunOptions' default."""
    typed = {field.name: getattr(args, field.name, None) for field in fields(RunOptions)}
    return RunOptions(**{name: value for name, value in typed.items() if value is not None})


def execute(args: argparse.Namespace) -> int:
    # SIGTERM (a scheduler, `kill`) stops a run as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    studies = _chosen_studies(args)
    options = run_options(args)
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
