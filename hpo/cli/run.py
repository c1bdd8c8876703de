"""``hpo run STUDY_FILE``: run or resume the studies a study file defines."""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from hpo.cli import COMMANDS
from hpo.cli._args import add_storage_argument, positive_float, positive_int, wrapped
from hpo.runners.options import DEFAULT_MAX_RETRIES, DEFAULT_THREADS, MODES, RUNNERS, RunOptions
from hpo.study.algorithms import PRUNERS, RAY_PRUNERS, SAMPLERS

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
                        help="auto: ask a batch of trials and train those of one batch "
                        "size together as one population (depth, width, activation, batch "
                        "norm and epochs may differ), a trial alone in its group as a "
                        "population of its own (so is each trial of a study with seeds > 1, "
                        "its seeds together); population: the same, through the batch path "
                        "even for a group of one; single: ask one trial at a time "
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
    from hpo.cli._running import execute as run_studies  # torch, Optuna: not for --help

    return run_studies(args, run_options(args))
