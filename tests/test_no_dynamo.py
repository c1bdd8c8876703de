"""hpo/train/no_dynamo.py builds the optimizers that never step without importing
torch._dynamo, relying on two details of torch's ``_disable_dynamo``. A torch upgrade that
changes them fails here with a message that names the module; a fresh process shows that a
population run and the preflight import nothing of dynamo, and that torch's own optimizers
still do."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from hpo.train import no_dynamo
from tests.conftest import write_study

ROOT = Path(__file__).resolve().parents[1]
MODULE = "hpo/train/no_dynamo.py"


@contextmanager
def relied_on(what: str) -> Iterator[None]:
    try:
        yield
    except (AssertionError, AttributeError, TypeError, OSError) as error:
        pytest.fail(f"{MODULE} relies on {what}, which torch {torch.__version__} changed "
                    f"({type(error).__name__}: {error}); update that module.", pytrace=False)


def test_add_param_group_is_wrapped_and_keeps_the_plain_function() -> None:
    with relied_on("torch.optim.Optimizer.add_param_group being torch._disable_dynamo's "
                   "wrapper, with the plain function as __wrapped__"):
        plain = no_dynamo.PLAIN_ADD_PARAM_GROUP
        assert plain is not None, "add_param_group has no __wrapped__"
        assert inspect.isfunction(plain) and plain.__name__ == "add_param_group"
        assert plain is not torch.optim.Optimizer.add_param_group
        assert no_dynamo.StandInSGD.add_param_group is plain


def test_the_wrapper_caches_dynamos_version_where_hpo_sets_it() -> None:
    from torch import _compile

    with relied_on("torch._compile._disable_dynamo caching its disabled function as "
                   f"fn.{no_dynamo.DYNAMO_CACHE_ATTRIBUTE} and importing torch._dynamo "
                   "only when that is missing"):
        source = inspect.getsource(_compile._disable_dynamo)
        name = no_dynamo.DYNAMO_CACHE_ATTRIBUTE
        assert f'getattr(fn, "{name}", None)' in source, source
        assert "import torch._dynamo" in source, source


def test_a_stand_in_carries_the_same_lr_as_torchs_sgd() -> None:
    from search_spaces import build_scheduler

    params = {"scheduler": "onecycle", "lr": 0.05, "onecycle_pct_start": 0.3,
              "onecycle_div_factor": 10.0, "onecycle_final_div_factor": 100.0}
    lrs = []
    for cls in (torch.optim.SGD, no_dynamo.StandInSGD):
        optimizer = cls([torch.nn.Parameter(torch.zeros(1))], lr=0.05)
        scheduler = build_scheduler(optimizer, params, epochs=10)
        assert scheduler is not None
        seen = []
        for _ in range(10):
            seen.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        lrs.append(seen)
    assert lrs[0] == lrs[1] and len(set(lrs[0])) > 1


FRESH_PROCESS = textwrap.dedent('''
    import sys, tempfile
    import torch
    import hpo
    from hpo import RunOptions
    from hpo.study.file import load_from_file
    from hpo.train import no_dynamo
    from search_spaces import build_optimizer

    def loaded():
        return "torch._dynamo" in sys.modules

    study = load_from_file(sys.argv[1], "tiny")
    storage = tempfile.mkdtemp() + "/s.journal"
    hpo.run(study, RunOptions(storage=storage, workers=1, progress=False, mode="population"))
    print("population run:", loaded())
    with no_dynamo.optimizers_built_without_dynamo():
        for name in ("sgd", "adam", "adamw", "rmsprop"):
            build_optimizer({"optimizer": name, "lr": 0.1}, torch.nn.Linear(2, 1).parameters())
    print("preflight's optimizers:", loaded())
    print("cache emptied:", not hasattr(no_dynamo.PLAIN_ADD_PARAM_GROUP, "__dynamo_disable"))
    torch.optim.Adam(torch.nn.Linear(2, 1).parameters())
    print("torch's own Adam:", loaded())
''')


@pytest.mark.slow
def test_a_population_run_never_imports_dynamo_and_torchs_optimizers_still_do(
    tmp_path: Path,
) -> None:
    # Every family: each stand-in drives its real torch scheduler through the whole run.
    from search_spaces import FAMILIES

    path = write_study(tmp_path, n_trials=len(FAMILIES) * 2, epochs=4,
                       families=",".join(FAMILIES))
    path.write_text(path.read_text().replace(f"families={','.join(FAMILIES)!r}",
                                             f"families={list(FAMILIES)!r}"))
    script = tmp_path / "fresh.py"
    script.write_text(FRESH_PROCESS)
    done = subprocess.run([sys.executable, str(script), str(path)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "population run: False",
        "preflight's optimizers: False",
        "cache emptied: True",
        "torch's own Adam: True",
    ], done.stdout + done.stderr
