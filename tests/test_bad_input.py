"""Bad input, table-driven: every mistake is exit code 2, one line naming the field or file
and what was expected, no traceback, and the storage left byte for byte as it was.

Each row is (id, files to write, argv, words the line must contain). Most run in-process
through ``hpo.cli.main``; a representative subset runs the real CLI in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hpo.cli import main
from tests.conftest import write_study

ROOT = Path(__file__).resolve().parents[1]
GOOD_SPACE = '''
from hpo import CsvData, LabData, Study
from search_spaces import (suggest_architecture, suggest_optimizer, suggest_scheduler,
                           suggest_training)

def good(trial):
    return {**suggest_architecture(trial, hidden_layers=1, width=4, activation="tanh",
                                   batch_norm=False, dropout=0.0),
            **suggest_optimizer(trial, optimizer="adam", weight_decay=0.0),
            **suggest_training(trial, batch_size=64, epochs=2),
            **suggest_scheduler(trial, families=("constant",))}
'''


def study_file(body: str, space: str = "good", data: str = "LabData(n=100, seed=0)",
               extra: str = "") -> str:
    return GOOD_SPACE + textwrap.dedent(body) + (
        f"\nSTUDY = Study(name='bad', space={space}, data={data}, n_trials=2{extra})\n")


def returning(expression: str) -> str:
    """A study file whose space returns the good params changed by ``expression``."""
    return study_file(f"def space(trial):\n    p = good(trial)\n    {expression}\n    return p\n",
                      space="space")


CSV_GOOD = "x,y\n1,2\n2,3\n3,4\n4,5\n5,6\n6,7\n7,8\n8,9\n9,10\n10,11\n"
CSV = "CsvData('data.csv', features=('x',), target='y')"

RUN = ["run", "s.py", "--storage", "store.journal", "--no-progress", "--workers", "1"]
CASES: list[tuple[str, dict[str, str], list[str], tuple[str, ...]]] = [
    # --- study files
    ("missing study file", {}, ["run", "nope.py", "--storage", "store.journal"], ("nope.py",)),
    ("syntax error", {"s.py": "STUDY = (\n"}, RUN, ("s.py", "line")),
    ("sys.exit at import", {"s.py": "import sys\nsys.exit(3)\n"}, RUN, ("s.py", "sys.exit")),
    ("exception at import", {"s.py": "raise RuntimeError('no GPU here')\n"}, RUN,
     ("s.py", "RuntimeError")),
    ("import of a missing module", {"s.py": "import not_a_module\n"}, RUN,
     ("s.py", "not_a_module")),
    ("no STUDY", {"s.py": "x = 1\n"}, RUN, ("s.py", "STUDY")),
    ("STUDY of the wrong type", {"s.py": "STUDY = {'name': 'x'}\n"}, RUN, ("s.py", "Study")),
    ("invalid sampler in the file", {"s.py": study_file("", extra=", sampler='bogus'")}, RUN,
     ("sampler",)),
    ("n_trials = 0 in the file", {"s.py": study_file("").replace("n_trials=2", "n_trials=0")},
     RUN, ("n_trials",)),
    ("space raises", {"s.py": study_file(
        "def space(trial):\n    raise RuntimeError('forgot a param')\n", space="space")}, RUN,
     ("search space", "RuntimeError", "forgot a param")),
    ("space calls sys.exit", {"s.py": study_file(
        "import sys\ndef space(trial):\n    sys.exit(1)\n", space="space")}, RUN,
     ("search space", "SystemExit")),
    ("space returns a list", {"s.py": study_file(
        "def space(trial):\n    return [1, 2]\n", space="space")}, RUN, ("dict", "list")),
    ("space lacks keys", {"s.py": returning("del p['epochs']")}, RUN, ("epochs", "missing")),
    ("lr of the wrong type", {"s.py": returning("p['lr'] = 'fast'")}, RUN,
     ("lr", "positive number")),
    ("negative lr", {"s.py": returning("p['lr'] = -0.1")}, RUN, ("lr", "positive number")),
    ("epochs = 0", {"s.py": returning("p['epochs'] = 0")}, RUN, ("epochs", "integer >= 1")),
    ("epochs a float", {"s.py": returning("p['epochs'] = 2.5")}, RUN, ("epochs", "integer")),
    ("bad batch size", {"s.py": returning("p['batch_size'] = -5")}, RUN, ("batch_size",)),
    ("unknown optimizer", {"s.py": returning("p['optimizer'] = 'adamx'")}, RUN,
     ("adamx",)),
    ("unknown scheduler", {"s.py": returning("p['scheduler'] = 'zigzag'")}, RUN,
     ("zigzag",)),
    # --- CLI flags
    ("--n-trials 0", {"s.py": study_file("")}, [*RUN, "--n-trials", "0"], ("--n-trials",)),
    ("--n-trials abc", {"s.py": study_file("")}, [*RUN, "--n-trials", "abc"], ("--n-trials",)),
    ("--workers -1", {"s.py": study_file("")}, [*RUN[:-2], "--workers", "-1"], ("--workers",)),
    ("--timeout 0", {"s.py": study_file("")}, [*RUN, "--timeout", "0"], ("--timeout",)),
    ("--trial-timeout x", {"s.py": study_file("")}, [*RUN, "--trial-timeout", "x"],
     ("--trial-timeout",)),
    ("--sampler bogus", {"s.py": study_file("")}, [*RUN, "--sampler", "bogus"], ("--sampler",)),
    ("--devices cuda:7", {"s.py": study_file("")}, [*RUN, "--devices", "cuda:7"], ("cuda",)),
    ("unknown flag", {"s.py": study_file("")}, [*RUN, "--bogus"], ("--bogus",)),
    # --- CSV data
    ("missing CSV", {"s.py": study_file("", data=CSV)}, RUN, ("data.csv",)),
    ("non-numeric cell", {"s.py": study_file("", data=CSV),
                          "data.csv": CSV_GOOD.replace("3,4", "3,four")}, RUN,
     ("data.csv", "four")),
    ("missing column", {"s.py": study_file("", data=CSV),
                        "data.csv": CSV_GOOD.replace("x,y", "a,y")}, RUN, ("data.csv", "x")),
    ("empty CSV", {"s.py": study_file("", data=CSV), "data.csv": ""}, RUN, ("data.csv",)),
    ("too few rows", {"s.py": study_file("", data=CSV), "data.csv": "x,y\n1,2\n"}, RUN,
     ("data.csv",)),
    # --- hand-picked TOML (hpo compare)
    ("missing TOML", {}, ["compare", "none.toml", "tiny", "--storage", "store.journal"],
     ("none.toml",)),
    ("TOML syntax", {"m.toml": "[defaults\n"}, ["compare", "m.toml", "tiny", "--storage",
                                                  "store.journal"], ("m.toml", "TOML")),
    ("TOML without configs", {"m.toml": "[defaults]\nlr = 0.1\n"},
     ["compare", "m.toml", "tiny", "--storage", "store.journal"], ("m.toml", "configs")),
    ("TOML unknown top table", {"m.toml": "[other]\nx = 1\n"},
     ["compare", "m.toml", "tiny", "--storage", "store.journal"], ("m.toml", "other")),
    # --- storage URLs
    ("unknown scheme", {"s.py": study_file("")}, [*RUN[:2], "--storage", "foo://x"],
     ("foo://x", "scheme")),
    ("journal in a missing folder", {"s.py": study_file("")},
     [*RUN[:2], "--storage", "nodir/x.journal"], ("nodir",)),
    ("storage is a folder", {"s.py": study_file(""), "adir/keep": ""},
     [*RUN[:2], "--storage", "adir"], ("adir", "directory")),
    ("unreachable PostgreSQL", {"s.py": study_file("")},
     [*RUN[:2], "--storage", "postgresql://hpo:s3cret-pw@127.0.0.1:1/hpo"],
     ("Cannot open the storage", "hpo:***@")),
    ("list on a missing storage", {}, ["list", "--storage", "missing.journal"],
     ("missing.journal",)),
]
# Run through a real `hpo` process as well: one of each kind of input.
IN_SUBPROCESS = {"sys.exit at import", "space raises", "space calls sys.exit",
                 "space lacks keys", "--n-trials 0", "non-numeric cell", "TOML syntax",
                 "unreachable PostgreSQL"}


def test_the_table_has_at_least_thirty_bad_inputs() -> None:
    assert len(CASES) >= 30 and len({case[0] for case in CASES}) == len(CASES)


def _prepare(folder: Path, files: dict[str, str]) -> bytes:
    """Write the case's files beside a storage that already holds one study."""
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    if not (folder / "store.journal").exists():
        from hpo.runners.optuna_runner import create_or_load
        from hpo.study.file import load_from_file

        study = load_from_file(write_study(folder), "tiny")
        create_or_load(study, str(folder / "store.journal"))
    return (folder / "store.journal").read_bytes()


def _check(code: int, err: str, out: str, words: tuple[str, ...], folder: Path,
           before: bytes) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err, out)
    assert len(lines) == 1, err
    assert "Traceback" not in err + out
    assert all(word.lower() in lines[0].lower() for word in words), lines[0]
    assert "s3cret-pw" not in err + out
    assert (folder / "store.journal").read_bytes() == before
    assert not (folder / "x.journal").exists() and not (folder / "hpo.journal").exists()


@pytest.mark.parametrize(("name", "files", "argv", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_in_process(name: str, files: dict[str, str], argv: list[str],
                              words: tuple[str, ...], in_tmp: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    before = _prepare(in_tmp, files)
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse exits on a bad flag
        code = int(stop.code or 0)
    captured = capsys.readouterr()
    _check(code, captured.err, captured.out, words, in_tmp, before)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "files", "argv", "words"),
                         [c for c in CASES if c[0] in IN_SUBPROCESS],
                         ids=[c[0] for c in CASES if c[0] in IN_SUBPROCESS])
def test_bad_input_through_the_real_cli(name: str, files: dict[str, str], argv: list[str],
                                        words: tuple[str, ...], tmp_path: Path) -> None:
    before = _prepare(tmp_path, files)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "hpo.cli", *argv], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    _check(done.returncode, done.stderr, done.stdout, words, tmp_path, before)
