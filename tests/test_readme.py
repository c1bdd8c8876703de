"""The README's promises: its Python example runs as shown, its commands exist."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from hpo.cli import COMMANDS

README = (Path(__file__).parents[1] / "README.md").read_text()


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


@pytest.mark.slow
def test_the_python_api_example_runs_as_shown(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = next(block for block in _python_blocks() if "hpo.run(" in block)
    exec(compile(example, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "test_r2" in out and "epoch" in out  # the per-epoch history was printed
    assert (in_tmp / "hpo.journal").exists()


def test_the_study_file_example_defines_a_study(tmp_path: Path) -> None:
    from hpo.study.file import load_studies

    example = next(block for block in _python_blocks() if "STUDY = Study(" in block)
    path = tmp_path / "mine.py"
    path.write_text(example)
    assert [s.name for s in load_studies(path)] == ["my-cosine"]


def test_every_hpo_command_the_readme_shows_exists() -> None:
    shown = set(re.findall(r"(?:bin/|`)hpo ([a-z]+)", README))
    assert shown <= set(COMMANDS), shown - set(COMMANDS)


def _command_lines() -> list[str]:
    """Every command of the README's bash blocks, comments cut."""
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    # A line ending in a backslash goes on on the next: one command.
    joined = [re.sub(r"\\\n\s*", "", block) for block in blocks]
    lines = [line.split("#", 1)[0].strip() for block in joined for line in block.splitlines()]
    return [" ".join(line.split()) for line in lines if line]


# Commands that take more than a few seconds (or serve until Ctrl-C), and why they are not
# run here; every other README command is run by the test below.
NOT_RUN_HERE = {
    "make demo": "the demo itself: 90 trials",
    "make test": "this test suite",
    ".venv/bin/hpo run studies/lr_schedules.py": "90 trials",
    ".venv/bin/hpo run studies/lr_schedules.py --study-name lr-cosine --n-trials 60": "60 trials",
    ".venv/bin/hpo run studies/cars_grid.py --workers 2": "the course's grid, 3-fold",
    ".venv/bin/hpo run studies/mlp_full.py --sampler random --pruner hyperband": "100 trials",
    ".venv/bin/python studies/cars_grid.py": "the course's grid, 3-fold",
    ".venv/bin/optuna-dashboard hpo.journal": "serves until Ctrl-C",
    ".venv/bin/hpo dashboard": "serves until Ctrl-C (tests/test_dashboard.py serves it)",
    ".venv/bin/hpo compare studies/homework_manual.toml lr-exponential lr-step lr-cosine "
    "--seeds 5": "125 re-trainings (tests/test_compare.py runs a small one)",
    "createdb hpo": "a PostgreSQL server (tests/test_storage_contract.py starts one)",
    "hpo run studies/mlp_full.py --storage postgresql://USER:PW@DBHOST/hpo --n-trials 200":
        "two hosts and a PostgreSQL server",
    ".venv/bin/hpo run studies/lr_schedules.py --runner ray": "90 trials on Ray "
    "(tests/test_ray_runner.py runs small ones)",
    ".venv/bin/hpo run studies/lr_schedules.py --runner ray --pruner asha": "90 trials on Ray",
    ".venv/bin/hpo run studies/mlp_full.py --runner ray --devices gpu --trials-per-device 4":
        "needs GPUs",
    "ray start --head --port 6379": "a Ray cluster of several hosts",
    "ray start --address HEAD_HOST:6379": "a Ray cluster of several hosts",
    "hpo run studies/lr_schedules.py --runner ray --address auto "
    "--storage postgresql://user:pw@dbhost/hpo": "a Ray cluster and a PostgreSQL server",
}


def test_every_command_said_not_to_run_is_still_in_the_readme() -> None:
    stale = set(NOT_RUN_HERE) - set(_command_lines())
    assert not stale, f"no longer in the README: {sorted(stale)}"


def test_every_readme_command_is_run_here_or_said_why_not() -> None:
    fast = [line for line in _command_lines() if line not in NOT_RUN_HERE]
    assert fast, "no README command left to run"
    assert all(line.startswith(".venv/bin/hpo ") for line in fast), fast


@pytest.mark.slow
def test_the_fast_readme_commands_exit_0_in_order(tmp_path: Path) -> None:
    """On a small lr-cosine study (3 trials), each README command that takes seconds is run
    as a user would type it (hpo from this checkout), in the README's order."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    hpo = [sys.executable, "-m", "hpo.cli"]
    setup = [*hpo, "run", str(root / "studies" / "lr_schedules.py"), "--study-name",
             "lr-cosine", "--n-trials", "3", "--workers", "1", "--no-progress"]
    subprocess.run(setup, cwd=tmp_path, env=env, check=True, capture_output=True, timeout=300)
    for line in _command_lines():
        if line in NOT_RUN_HERE:
            continue
        argv = [*hpo, *shlex.split(line.removeprefix(".venv/bin/hpo "))]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, (line, done.stderr[-2000:])
        assert done.stdout.strip(), line  # each says something
