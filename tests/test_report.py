"""hpo.results.report and ``hpo report`` on studies stored by the real runner: the figures are real
PNGs, and every number in index.md and trials.csv is the one in the storage."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from optuna.trial import TrialState, create_trial

from hpo import LabData, RunOptions, Study, run
from hpo.cli import main
from hpo.results.report import (
    INDEX,
    TRIALS_CSV,
    best_prediction,
    figure_specs,
    make_report,
    write_report,
)
from hpo.results.tables import trial_history
from hpo.store.attrs import trial_params, write_record
from hpo.store.record import stored_record
from hpo.store.storage import open_storage
from search_spaces import (
    suggest_architecture,
    suggest_optimizer,
    suggest_scheduler,
    suggest_training,
)
from tests.fresh_process import heavy_loaded

FIGURES = {
    "history.png",
    "intermediate.png",
    "lr_curves.png",
    "prediction.png",
    "mse.png",
    "importances.png",
    "slice.png",
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def small_space(trial: Any) -> dict[str, Any]:
    return {
        **suggest_architecture(
            trial, hidden_layers=1, width=8, activation="tanh", batch_norm=False, dropout=0.0
        ),
        **suggest_optimizer(trial, optimizer="adam", weight_decay=0.0),
        **suggest_training(trial, batch_size=64, epochs=8),
        **suggest_scheduler(trial, families=("exponential", "cosine")),
    }


STUDY = Study(
    name="small",
    space=small_space,
    data=LabData(n=200),
    n_trials=6,
    seed=0,
    description="two schedule families on 200 lab points",
)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A journal with the 6-trial study, a 1-trial one, a cross-validated one and one whose
    trials were all pruned or failed."""
    path = str(tmp_path_factory.mktemp("storage") / "s.journal")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets; extra threads only slow a shared machine down
    try:
        options = RunOptions(storage=path, progress=False)
        record = stored_record(run(STUDY, options))
        run(STUDY.replace(name="one", n_trials=1), options)
        run(STUDY.replace(name="cv", n_trials=2, cv_folds=3), options)
    finally:
        torch.set_num_threads(threads)
    _store_unfinished_study(path, record)
    return path


def _store_unfinished_study(path: str, record: dict[str, Any]) -> None:
    study = optuna.create_study(
        storage=open_storage(path), study_name="unfinished", direction="maximize"
    )
    write_record(study, record)
    study.add_trial(
        create_trial(
            state=TrialState.PRUNED,
            intermediate_values={1: 0.1, 2: 0.2},
            user_attrs={"ended": "pruned", "epochs_run": 2},
        )
    )
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"ended": "diverged"}))


@pytest.fixture(scope="module")
def report(storage: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report("small", storage=storage, out=tmp_path_factory.mktemp("report"))



def stored(storage: str, name: str = "small") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(storage))


def assert_real_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    image = matplotlib.image.imread(path)  # (height, width, channels)
    assert image.shape[0] >= 200 and image.shape[1] >= 300
    assert np.unique(image[..., :3].round(2)).size > 10  # not blank: many shades drawn


def markdown_table(index: str, heading: str) -> pd.DataFrame:
    """The first Markdown table after ``heading``, parsed back into strings."""
    section = index.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(section) if line.startswith("|"))
    lines = itertools.takewhile(lambda line: line.startswith("|"), section[start:])
    rows = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]
    return pd.DataFrame(rows[2:], columns=rows[0])


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_figure_is_a_real_png(report: Path, name: str) -> None:
    assert_real_png(report / name)


def test_the_report_links_every_figure_and_nothing_else(report: Path) -> None:
    index = (report / INDEX).read_text(encoding="utf-8")
    linked = set(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", index))
    assert linked == FIGURES
    assert {p.name for p in report.iterdir()} == FIGURES | {INDEX, TRIALS_CSV}
    assert "Skipped figures" not in index
    assert "two schedule families on 200 lab points" in index


def test_trial_counts_equal_the_storage(report: Path, storage: str) -> None:
    counts = markdown_table((report / INDEX).read_text(encoding="utf-8"), "## Trials by state")
    states = [t.state.name.lower() for t in stored(storage).trials]
    words = {"complete": "complete", "pruned": "pruned", "fail": "failed", "running": "running",
             "waiting": "waiting"}
    expected = {word: states.count(state) for state, word in words.items()}
    assert dict(zip(counts["state"], counts["trials"].astype(int), strict=True)) == {
        **expected,
        "total": len(states),
    }


def test_leaderboard_and_best_trial_equal_the_storage(report: Path, storage: str) -> None:
    study = stored(storage)
    index = (report / INDEX).read_text(encoding="utf-8")
    board = markdown_table(index, "## Leaderboard")
    complete = sorted(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: -t.value)
    assert board["trial"].astype(int).tolist() == [t.number for t in complete]
    np.testing.assert_allclose(
        board["validation R²"].astype(float), [t.value for t in complete], atol=5e-5
    )
    assert all(re.fullmatch(r"-?\d+\.\d{4}", cell) for cell in board["validation R²"])
    best = re.search(r"Trial (\d+): validation R² \*\*(-?[\d.]+)\*\*", index)
    assert best is not None
    assert int(best[1]) == study.best_trial.number
    assert float(best[2]) == pytest.approx(study.best_value, abs=5e-5)
    params = markdown_table(index, "## Best trial")
    searched = params[params["searched"] == "yes"]["param"].tolist()
    assert sorted(searched) == sorted(study.best_trial.params)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_figure_is_sized_for_a_1280x720_projector(report: Path, name: str) -> None:
    height, width = matplotlib.image.imread(report / name).shape[:2]
    # Shown whole on a 1280×720 slide with little scaling, so its text stays readable.
    assert 1000 <= width <= 1400 and 550 <= height <= 800, (width, height)


def test_trials_csv_writes_counts_as_integers(report: Path) -> None:
    text = (report / TRIALS_CSV).read_text()
    frame = pd.read_csv(report / TRIALS_CSV, dtype=str)
    assert all("." not in cell for cell in frame["n_params"].dropna()), text[:300]


def test_trials_csv_equals_the_storage(report: Path, storage: str) -> None:
    frame = pd.read_csv(report / TRIALS_CSV)
    trials = stored(storage).trials
    assert frame["number"].tolist() == [t.number for t in trials]
    assert frame["state"].tolist() == [t.state.name for t in trials]
    # Only complete trials carry a score; a pruned trial's last report is not one.
    np.testing.assert_allclose(
        frame["value"],
        [t.value if t.state == TrialState.COMPLETE else np.nan for t in trials],
    )
    np.testing.assert_allclose(frame["params_lr"], [trial_params(t)["lr"] for t in trials])


def test_the_best_model_is_retrained_exactly(storage: str) -> None:
    study = stored(storage)
    fit = best_prediction(study)
    assert fit.trial == study.best_trial.number
    assert fit.test_r2 == pytest.approx(study.best_value, abs=1e-6)
    assert len(fit.train) + len(fit.test) == 140  # train and validation: 60 rows held out


def test_a_report_leaves_no_figure_open_and_the_style_unchanged(
    storage: str, tmp_path: Path
) -> None:
    style = dict(plt.rcParams)
    make_report("one", storage=storage, out=tmp_path)
    assert plt.get_fignums() == []
    assert dict(plt.rcParams) == style


def test_one_complete_trial_skips_importances_with_a_note(storage: str, tmp_path: Path) -> None:
    (tmp_path / "importances.png").write_bytes(b"left from an older report")
    report = make_report("one", storage=storage, out=tmp_path)
    assert set(report.skipped) == {"importances.png"}
    assert not (tmp_path / "importances.png").exists()
    index = report.index.read_text(encoding="utf-8")
    assert re.search(r"- `importances.png`: needs at least 2 complete trials; .* has 1", index)
    for spec in report.figures:
        assert_real_png(tmp_path / spec.file)


def test_only_pruned_and_failed_trials_still_give_a_report(storage: str, tmp_path: Path) -> None:
    report = make_report("unfinished", storage=storage, out=tmp_path)
    assert [spec.file for spec in report.figures] == ["intermediate.png"]
    assert set(report.skipped) == FIGURES - {"intermediate.png"}
    index = report.index.read_text(encoding="utf-8")
    assert "No complete trial yet" in index
    assert all(f"- `{file}`: " in index for file in report.skipped)
    assert pd.read_csv(tmp_path / TRIALS_CSV)["state"].tolist() == ["PRUNED", "FAIL"]


def test_a_cross_validated_study_retrains_its_first_fold(storage: str, tmp_path: Path) -> None:
    study = stored(storage, "cv")
    fit = best_prediction(study)
    first_fold = trial_history(study.best_trial).iloc[0]  # one row per fold
    assert fit.where == "fold 1 of 3"
    assert fit.test_r2 == pytest.approx(first_fold["test_r2"], abs=1e-6)
    report = make_report("cv", storage=storage, out=tmp_path)
    assert set(report.skipped) == {"mse.png"}
    assert "one row per fold" in report.skipped["mse.png"]
    assert "3-fold CV R² per fold" in report.index.read_text(encoding="utf-8")


def test_a_study_not_run_by_hpo_skips_the_prediction(tmp_path: Path) -> None:
    path = str(tmp_path / "plain.journal")
    study = optuna.create_study(
        storage=open_storage(path), study_name="plain", direction="maximize"
    )
    study.optimize(lambda t: -(t.suggest_float("x", -1, 1) ** 2), n_trials=3)
    report = make_report("plain", storage=path, out=tmp_path / "out")
    assert "not created by `hpo run`" in report.skipped["prediction.png"]
    assert "history.png" in [spec.file for spec in report.figures]


def test_figure_specs_name_every_figure(storage: str) -> None:
    assert {spec.file for spec in figure_specs(stored(storage))} == FIGURES


def test_cli_report_writes_to_hpo_report_study_by_default(
    storage: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["report", "one", "--storage", storage]) == 0
    folder = tmp_path / "hpo-report-one"
    assert (folder / INDEX).exists() and (folder / TRIALS_CSV).exists()
    out = capsys.readouterr().out
    assert str(folder / INDEX) in out and "skipped importances.png" in out


def test_cli_report_loads_neither_ray_nor_the_dashboard(storage: str, tmp_path: Path) -> None:
    """A command imports what it uses: Ray is the Ray runner's, optuna-dashboard the
    dashboard's (a fresh process: this one has imported everything already)."""
    code = ("from hpo.cli import main\n"
            f"assert main(['report', 'small', '--storage', {storage!r}, '--out', 'r']) == 0")
    assert heavy_loaded(code, tmp_path, ("ray", "optuna_dashboard")) == []
    assert (tmp_path / "r" / "importances.png").exists()  # what needs scikit-learn was drawn


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["report", "nope"],
            r"No study named 'nope' in .*s\.journal; it holds 'small', 'one', "
            r"'cv', 'unfinished'\.",
        ),
        (["report", "small", "--storage", "missing.journal"], r"No storage at 'missing\.journal'"),
        (
            ["report", "small", "--storage", "postgresql://nobody@127.0.0.1:1/none"],
            r"Cannot open the storage postgresql://nobody\S*@127\.0\.0\.1:1/none: ",
        ),
        (["report", "small", "--storage", "ftp://host/x"], r"Expected a storage URL"),
    ],
)
def test_cli_report_refuses_bad_input_in_one_line(
    argv: list[str],
    message: str,
    storage: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    if "--storage" not in argv:
        argv = [*argv, "--storage", storage]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hpo: error: ")
    assert re.search(message, err)
    assert not (tmp_path / "missing.journal").exists()  # refused, not created empty


def test_cli_report_refuses_an_out_that_is_a_file(
    storage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "taken"
    out.write_text("")
    assert main(["report", "one", "--storage", storage, "--out", str(out)]) == 2
    assert "is a file" in capsys.readouterr().err
