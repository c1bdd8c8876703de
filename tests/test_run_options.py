"""RunOptions: every default in one place, every field checked when built, and the command
line passing only the flags a user typed."""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

import pytest

from hpo.cli import build_parser, main
from hpo.cli.run import run_options
from hpo.errors import ConfigError
from hpo.runners.options import DEFAULT_MAX_RETRIES, RunOptions


@pytest.mark.parametrize(("field", "value", "match"), [
    ("workers", 0, "`workers >= 1` must hold"),
    ("workers", True, "`workers >= 1` must hold"),
    ("trials_per_device", 0, "`trials_per_device >= 1` must hold"),
    ("trials_per_device", None, "`trials_per_device >= 1` must hold"),
    ("population_size", 2.0, "`population_size >= 1` must hold"),
    ("max_retries", -1, "`max_retries >= 0` must hold"),
    ("mode", "fast", "`mode` must be one of auto, population, single"),
    ("runner", "dask", "`runner` must be one of optuna, ray"),
    ("trial_timeout", 0, "`trial_timeout > 0` must hold"),
    ("trial_timeout", "5", "`trial_timeout > 0` must hold"),
])
def test_a_bad_value_of_any_option_is_refused_when_built(field: str, value: Any,
                                                         match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        RunOptions(**{field: value})


def _parsed(*flags: str) -> argparse.Namespace:
    words = ["run", "study.py", *flags]
    return build_parser(words).parse_args(words)


def test_the_command_line_keeps_every_default_of_run_options() -> None:
    assert run_options(_parsed()) == RunOptions()


def test_the_command_line_passes_the_flags_typed() -> None:
    options = run_options(_parsed("--workers", "2", "--mode", "single", "--no-progress",
                                  "--population-size", "8", "--trial-timeout", "3"))
    assert options == RunOptions(workers=2, mode="single", progress=False, population_size=8,
                                 trial_timeout=3.0)


def test_help_shows_the_defaults_of_run_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere
    defaults = {f.name: f.default for f in fields(RunOptions)}
    for flag, name in (("--devices", "devices"), ("--trials-per-device", "trials_per_device"),
                       ("--runner", "runner"), ("--mode", "mode"),
                       ("--population-size", "population_size")):
        assert flag in text and f"(default: {defaults[name]})" in text
    assert f"(default: {DEFAULT_MAX_RETRIES})" in text
