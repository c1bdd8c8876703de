"""The command line: what a user sees for a good run and for every kind of mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hpo.cli import COMMANDS, main
from tests.conftest import write_study
from tests.fresh_process import heavy_loaded


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv) if argv[0] != "--" else None
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def _argparse_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_run_prints_leaderboard_and_dashboard_line(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(in_tmp, n_trials=3)
    assert main(["run", str(path), "--no-progress", "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "== tiny: 3 complete" in out
    assert "best score (validation R²):" in out and "best params: lr=" in out
    assert "held-out test R² of trial" in out  # scored once, after the search
    assert max(len(line) for line in out.splitlines()) <= 100  # fits a projected terminal
    assert "optuna-dashboard hpo.journal" in out
    assert (in_tmp / "hpo.journal").exists()  # the default storage, in the working folder
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "tiny" in listing and "3" in listing


def test_a_grid_study_run_with_another_sampler_searches_its_space(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(in_tmp, sampler="grid", epochs=2, extra=', grid={"lr": [0.001, 0.1]}')
    assert main(["run", str(path), "--no-progress", "--sampler", "random",
                 "--n-trials", "3"]) == 0
    out = capsys.readouterr().out
    assert "== tiny: 3 complete" in out  # three trials of the space, not the grid's two


def test_flags_override_the_study_and_study_name_renames(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(in_tmp, n_trials=10)
    assert (
        main(
            [
                "run",
                str(path),
                "--no-progress",
                "--n-trials",
                "2",
                "--sampler",
                "qmc",
                "--study-name",
                "renamed",
                "--storage",
                "s.db",
            ]
        )
        == 0
    )
    assert "== renamed: 2 complete" in capsys.readouterr().out
    main(["list", "--storage", "s.db"])
    assert "renamed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--sampler", "bayes"], "invalid choice: 'bayes'"),
        (["--pruner", "early"], "invalid choice: 'early'"),
        (["--n-trials", "0"], "expected a positive integer, got '0'"),
        (["--n-trials", "many"], "expected a positive integer, got 'many'"),
        (["--timeout", "-1"], "expected a positive number"),
        (["--workers", "0"], "expected a positive integer"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_flags_are_one_line(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], flags: list[str], expected: str
) -> None:
    path = write_study(in_tmp)
    assert expected in _argparse_error(capsys, ["run", str(path), *flags])


STUDY_FILE_MISTAKES = {
    "missing": (None, "not found"),
    "syntax": ("STUDY = Study(name='x'\n", "line 1"),
    "no_study": ("x = 1\n", "defines no study: expected a module-level `STUDY"),
    "wrong_type": ("STUDY = 3\n", "must hold hpo.Study objects, but got int"),
    "raises": ("import math\nSTUDY = math.nope\n", "line 2: running it raised AttributeError"),
    "grid_without_values": (
        "from hpo import Study\nSTUDY = Study(name='g', space=lambda t: {}, sampler='grid')\n",
        "the grid sampler needs the values to try",
    ),
    "bad_sampler_in_file": (
        "from hpo import Study\nSTUDY = Study(name='g', space=lambda t: {}, sampler='bayes')\n",
        "`sampler` must be one of grid, random, tpe, gp, cmaes, qmc, but got 'bayes'",
    ),
}


@pytest.mark.parametrize("mistake", STUDY_FILE_MISTAKES)
def test_study_file_mistakes_are_one_line(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], mistake: str
) -> None:
    text, expected = STUDY_FILE_MISTAKES[mistake]
    path = in_tmp / f"{mistake}.py"
    if text is not None:
        path.write_text(text)
    line = _one_line_error(capsys, ["run", str(path)])
    assert expected in line and str(path) in line


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--devices", "cuda:7"], "does not exist: this machine has"),
        (["--devices", "tpu"], "Expected a device named cpu or cuda:N, but got 'tpu'"),
        (["--storage", "postgresql://hpo:secret@127.0.0.1:9/none"], "Cannot open the storage"),
        (["--storage", "nosuchdir/s.journal"], "the folder 'nosuchdir' does not exist"),
        (["--storage", "redis2://x"], "Expected a storage URL with one of the schemes"),
        (["--study-name", "nope"], None),  # one study in the file: renames, so this one runs
    ],
)
def test_bad_devices_and_storages_are_one_line(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], flags: list[str], expected: str | None
) -> None:
    path = write_study(in_tmp, n_trials=1)
    argv = ["run", str(path), "--no-progress", *flags]
    if expected is None:
        assert main(argv) == 0
        return
    line = _one_line_error(capsys, argv)
    assert expected in line
    assert "secret" not in line  # passwords never reach the terminal


def test_unknown_study_name_in_a_file_with_several(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    studies = Path(__file__).parents[1] / "studies" / "lr_schedules.py"
    line = _one_line_error(capsys, ["run", str(studies), "--study-name", "lr-linear"])
    assert "No study named 'lr-linear'; valid names are 'lr-exponential'" in line


def test_a_real_process_exits_2_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hpo.cli", "run", str(tmp_path / "absent.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("hpo: error: Study file") and "Traceback" not in result.stderr


def test_a_study_file_runs_as_a_script(tmp_path: Path) -> None:
    path = write_study(tmp_path, n_trials=2)
    path.write_text(
        path.read_text() + "\nif __name__ == '__main__':\n"
        "    from hpo.cli import main_for\n    main_for(__file__)\n"
    )
    result = subprocess.run(
        [sys.executable, str(path), "--no-progress", "--storage", str(tmp_path / "s.journal")],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "== tiny: 2 complete" in result.stdout


@pytest.mark.slow
def test_the_printed_dashboard_line_shows_studies_and_intermediate_r2(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import shlex
    import socket
    import time
    import urllib.request

    path = write_study(in_tmp, n_trials=2)
    assert main(["run", str(path), "--no-progress", "--workers", "1"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "optuna-dashboard" in x)
    command = shlex.split(line.split(": ", 1)[1])  # exactly what the user is told to type
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    executable = str(Path(sys.executable).parent / command[0])
    server = subprocess.Popen([executable, *command[1:], "--host", "127.0.0.1",
                               "--port", str(port)], cwd=in_tmp,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/api/studies"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base, timeout=5) as response:
                    summaries = json.load(response)["study_summaries"]
                break
            except OSError:
                assert time.monotonic() < deadline, "optuna-dashboard did not answer"
                time.sleep(0.5)
        assert [s["study_name"] for s in summaries] == ["tiny"]
        with urllib.request.urlopen(f"{base}/{summaries[0]['study_id']}", timeout=10) as response:
            trials = json.load(response)["trials"]
        assert len(trials) == 2
        assert [len(t["intermediate_values"]) for t in trials] == [6, 6]  # R² of every epoch
        assert {a["key"] for a in trials[0]["user_attrs"]} >= {"family", "n_params", "seconds"}
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize(("argv", "heavy"), [
    (["--help"], ("torch", "optuna", "pandas", "ray")),
    (["list", "--storage", "nothing-here.journal"], ("torch", "ray")),
])
def test_help_and_list_import_no_heavy_library(
    tmp_path: Path, argv: list[str], heavy: tuple[str, ...]
) -> None:
    """`hpo --help` and `hpo list` answer at once: torch alone takes seconds to import."""
    probe = ("import sys\nfrom hpo.cli import main\n"
             f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
             f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                          text=True, env={"PYTHONPATH": str(Path(__file__).parents[1]),
                                          "PATH": "/usr/bin:/bin"}, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_answers_help_without_heavy_libraries(tmp_path: Path, command: str) -> None:
    """Each command imports what it uses when it uses it: ``--help`` builds a parser only."""
    code = (f"from hpo.cli import main\ntry:\n    main([{command!r}, '--help'])\n"
            "except SystemExit:\n    pass")
    heavy = ("torch", "optuna", "matplotlib", "pandas", "ray", "sklearn", "optuna_dashboard")
    assert heavy_loaded(code, tmp_path, heavy) == []


def test_run_piped_shows_a_few_progress_lines_towards_the_target(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(in_tmp, n_trials=3)
    assert main(["run", str(path), "--workers", "1"]) == 0  # stderr is captured: not a tty
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("tiny:")]
    assert lines[0] == "tiny: 3 trials to run" and lines[-1].startswith("tiny: 3/3 trials")
    assert "best validation R²" in lines[-1] and "\r" not in err and len(err.splitlines()) <= 20
    # Extending the study counts towards the new target, from what it already holds.
    assert main(["run", str(path), "--workers", "1", "--n-trials", "5"]) == 0
    err = capsys.readouterr().err
    assert "tiny: 2 trials to run (3 done before)" in err and "tiny: 5/5 trials" in err
    # A finished study run again says that nothing new ran.
    assert main(["run", str(path), "--workers", "1", "--n-trials", "5"]) == 0
    captured = capsys.readouterr()
    assert "Nothing new ran: the study already held its 5 finished trials" in captured.out
    assert captured.err == ""


def test_help_is_plain_text_that_fits_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("run", "list", "compare", "report", "export", "predict"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "``" not in text, command  # no raw reST markup
        assert max(len(line) for line in text.splitlines()) <= 100, command
