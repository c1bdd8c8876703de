"""The README's promises: its Python example runs as shown, its commands exist."""

from __future__ import annotations

import re
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
