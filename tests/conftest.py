"""Shared test helpers: tiny study files that exercise the real runner in seconds."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

TINY_STUDY = '''
from hpo import LabData, Study
from search_spaces import (Float, suggest_architecture, suggest_optimizer,
                           suggest_scheduler, suggest_training)

def space(trial):
    return {{**suggest_architecture(trial, hidden_layers=1, width=8, activation="tanh",
                                    batch_norm=False, dropout=0.0),
            **suggest_optimizer(trial, optimizer="adam", weight_decay=0.0),
            **suggest_training(trial, batch_size=64, epochs={epochs}),
            **suggest_scheduler(trial, families={families!r},
                                overrides={{"cosine": {{"lr": Float({lr_low}, {lr_high}, log=True),
                                                      "cosine_floor_fraction": 0.0}}}})}}

STUDY = Study(name={name!r}, space=space, data=LabData(n=200, seed=0), n_trials={n_trials},
              sampler={sampler!r}, pruner={pruner!r}, seed=0{extra})
'''


def write_study(
    folder: Path, *, name: str = "tiny", n_trials: int = 4, sampler: str = "random",
    pruner: str = "none", epochs: int = 6, families: str = "cosine", lr_low: float = 1e-3,
    lr_high: float = 0.1, extra: str = "",
) -> Path:
    """A study file with a small MLP on 200 lab points: a trial takes well under a second."""
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(TINY_STUDY.format(
        name=name, n_trials=n_trials, sampler=sampler, pruner=pruner, epochs=epochs,
        families=families, lr_low=lr_low, lr_high=lr_high, extra=extra)))
    return path


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Lab-sized models gain nothing from intra-op threads, and lose 20x or more when other
    jobs share the cores (measured: 0.7 s against 15-28 s per lab trial on a loaded 2-core
    machine). Runners set their own count per worker; this covers training in tests."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty working folder, so the default storage lands there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server on loopback for the whole session (see tests/postgres.py)."""
    from tests.postgres import postgres_server

    with postgres_server() as url:
        yield url
