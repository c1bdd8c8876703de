"""Torch's thread count: one per worker process by default (``RunOptions.threads``), the
same in the main process's refit after ``hpo run``, and the caller's count given back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

import hpo.results.holdout
from hpo.cli import main
from hpo.errors import ConfigError
from hpo.results.tables import load_study
from hpo.runners.optuna_runner import RunOptions, run
from hpo.study.file import load_from_file
from hpo.train.threads import torch_threads
from tests.conftest import write_study


def _refit_threads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The thread counts the held-out refits at the end of ``hpo run`` train with."""
    seen: list[int] = []
    real = hpo.results.holdout.evaluate_many

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(hpo.results.holdout, "evaluate_many", spy)
    return seen


def _trained_with(folder: Path, workers: str, *flags: str) -> tuple[set[int], set[bool]]:
    """``hpo run`` on a tiny study: the threads its trials trained with, and whether each
    trained in a worker process (not this one)."""
    path = write_study(folder, n_trials=2, epochs=3)
    assert main(["run", str(path), "--no-progress", "--workers", workers, *flags]) == 0
    trials = load_study("tiny", "hpo.journal").trials
    elsewhere = {not t.user_attrs["worker"].endswith(f":{os.getpid()}") for t in trials}
    return {t.user_attrs["threads"] for t in trials}, elsewhere


@pytest.mark.parametrize(("workers", "elsewhere"), [("1", False), ("2", True)])
def test_trainings_of_hpo_run_take_one_thread_by_default(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, workers: str, elsewhere: bool
) -> None:
    torch.set_num_threads(2)  # a caller at torch's default on a 2-core machine
    refits = _refit_threads(monkeypatch)
    assert _trained_with(in_tmp, workers) == ({1}, {elsewhere})  # in-process, or forked
    assert refits == [1]
    assert torch.get_num_threads() == 2  # given back


@pytest.mark.parametrize("workers", ["1", pytest.param("2", marks=pytest.mark.slow)])
def test_threads_flag_sets_the_workers_and_the_refits_count(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    refits = _refit_threads(monkeypatch)
    threads, _ = _trained_with(in_tmp, workers, "--threads", "2")  # 2 workers: spawned
    assert threads == {2} and refits == [2]
    assert torch.get_num_threads() == 1  # the count this test ran at (tests/conftest.py)


def test_an_in_process_run_gives_the_callers_count_back(tmp_path: Path) -> None:
    study = load_from_file(write_study(tmp_path, n_trials=2, epochs=3), "tiny")
    torch.set_num_threads(2)
    trials = run(study, RunOptions(storage=str(tmp_path / "s.journal"), workers=1,
                                   progress=False, threads=1)).trials
    assert {t.user_attrs["threads"] for t in trials} == {1}
    assert torch.get_num_threads() == 2


def test_torch_threads_gives_the_count_back_after_an_error() -> None:
    torch.set_num_threads(2)
    with pytest.raises(RuntimeError), torch_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_threads_must_be_a_positive_int(threads: Any) -> None:
    with pytest.raises(ConfigError, match=r"`threads >= 1` must hold .* but got threads="):
        RunOptions(threads=threads)


def test_threads_are_refused_with_the_ray_runner(tmp_path: Path) -> None:
    study = load_from_file(write_study(tmp_path), "tiny")
    with pytest.raises(ConfigError, match="--threads only apply with --runner optuna"):
        run(study, RunOptions(storage=str(tmp_path / "s.journal"), runner="ray", threads=2))
