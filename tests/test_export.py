"""hpo.results.export and ``hpo export`` / ``hpo predict``: the exported model is the trial's model
(its test R² is the stored value), and predict gives what that model gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from optuna.trial import TrialState, create_trial
from sklearn.metrics import r2_score

from hpo import LabData, Mtcars, RunOptions, Study, run
from hpo.cli import main
from hpo.data import Standardizer
from hpo.errors import ConfigError, DataError
from hpo.results.export import export, predict, predict_csv
from hpo.results.tables import load_study, trial_history
from hpo.store.attrs import trial_params, write_record
from hpo.store.record import folds_from_record, stored_record
from hpo.store.storage import open_storage
from hpo.store.summary import best_trial
from hpo.train.checkpoints import load_model
from hpo.train.objective import train_params
from search_spaces import (
    Float,
    suggest_architecture,
    suggest_optimizer,
    suggest_scheduler,
    suggest_training,
)


def space_of(batch_size: int, epochs: int, lr: tuple[float, float] = (0.01, 0.1)) -> Any:
    def space(trial: Any) -> dict[str, Any]:
        return {
            **suggest_architecture(
                trial, hidden_layers=1, width=8, activation="tanh", batch_norm=True, dropout=0.0
            ),
            **suggest_optimizer(trial, optimizer="adam", weight_decay=0.0),
            **suggest_training(trial, batch_size=batch_size, epochs=epochs),
            **suggest_scheduler(
                trial, families="cosine", overrides={"cosine": {"lr": Float(*lr, log=True)}}
            ),
        }

    return space



@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    """ "lab": 1 feature, scored at the last epoch; "cars": 2 standardized features, scored
    at the best epoch (batch norm in both, so eval mode matters). Trained one at a time:
    a retrain repeats those to the last bit (a population's batched float32 rounding,
    amplified by batch norm with Adam, moves R² by up to about 1e-4)."""
    path = str(tmp_path_factory.mktemp("storage") / "s.journal")
    options = RunOptions(storage=path, progress=False, workers=1,  # in-process: closures
                         mode="single")
    run(Study(name="lab", space=space_of(16, 10), data=LabData(n=120), n_trials=3, seed=0), options)
    run(
        Study(
            name="cars",
            space=space_of(8, 60, (0.1, 0.3)),
            data=Mtcars(features=("wt", "hp")),
            standardize=True,
            score="best",
            n_trials=3,
            seed=1,
        ),
        options,
    )
    torch.set_num_threads(1)  # the runner sets its own count
    return path


@pytest.fixture(scope="module")
def exported(storage: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    paths = {name: folder / f"{name}.pt" for name in ("lab", "cars")}
    for name, path in paths.items():
        export(name, path, storage=storage)
    return paths


def retrained_by_hand(storage: str, name: str) -> tuple[torch.nn.Module, Any, Any]:
    """The best trial trained again here, with the epochs the study scored."""
    study = load_study(name, storage)
    trial = best_trial(study)
    fold = folds_from_record(stored_record(study))[0]
    history = trial_history(trial)
    stop = int(history.loc[history["test_r2"].idxmax(), "epoch"]) if name == "cars" else 10
    torch.set_num_threads(trial.user_attrs["threads"])  # what the runner gave its worker
    try:
        model, _, _ = train_params(
            trial_params(trial),
            fold,
            seed=trial.user_attrs["seed"],
            callback=lambda epoch, row: epoch >= stop,
        )
    finally:
        torch.set_num_threads(1)
    return model.eval(), fold, trial


def raw_test(storage: str, name: str) -> Any:
    """(rows the trials trained on, rows they were scored on), unstandardized."""
    record = stored_record(load_study(name, storage))
    fold = folds_from_record({**record, "standardize": False})[0]
    return fold.train, fold.test


# --- export -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lab", "cars"])
def test_exported_model_scores_the_stored_value(
    storage: str, exported: dict[str, Path], name: str
) -> None:
    model, spec, extra = load_model(exported[name])
    trial = best_trial(load_study(name, storage))
    fold = folds_from_record(stored_record(load_study(name, storage)))[0]
    with torch.no_grad():
        pred = model(torch.from_numpy(fold.test.x)).numpy()
    # sklearn as the oracle, in float64 as hpo.train.metrics computes it
    assert r2_score(fold.test.y.astype(float), pred.astype(float)) == pytest.approx(
        trial.value, abs=1e-6
    )
    assert abs(extra["retrained_r2"] - trial.value) <= 1e-6
    assert (extra["study"], extra["trial"], extra["test_r2"]) == (name, trial.number, trial.value)
    assert extra["params"] == trial_params(trial) and extra["seed"] == trial.user_attrs["seed"]
    assert spec.batch_norm is True and spec.in_features == len(extra["feature_names"])


def test_the_epoch_the_study_scored_is_saved(storage: str, exported: dict[str, Path]) -> None:
    cars = best_trial(load_study("cars", storage))
    history = trial_history(cars)
    best_epoch = int(history.loc[history["test_r2"].idxmax(), "epoch"])
    assert best_epoch < 60  # score="best": not the last epoch, so stopping there matters
    assert load_model(exported["cars"])[2]["epoch"] == best_epoch
    assert load_model(exported["lab"])[2]["epoch"] == 10  # score="final"


def test_names_and_standardization_are_saved(storage: str, exported: dict[str, Path]) -> None:
    lab, cars = load_model(exported["lab"])[2], load_model(exported["cars"])[2]
    assert (lab["feature_names"], lab["target_name"], lab["standardize"]) == (["x"], "y", None)
    assert (cars["feature_names"], cars["target_name"]) == (["wt", "hp"], "mpg")
    scaler = Standardizer().fit(raw_test(storage, "cars")[0])
    assert cars["standardize"]["mean"] == pytest.approx(scaler.mean_.tolist())
    assert cars["standardize"]["std"] == pytest.approx(scaler.scale_.tolist())


@pytest.mark.parametrize("name", ["lab", "cars"])
def test_predict_gives_the_retrained_models_outputs(
    storage: str, exported: dict[str, Path], name: str
) -> None:
    model, fold, trial = retrained_by_hand(storage, name)
    with torch.no_grad():
        expected = model(torch.from_numpy(fold.test.x)).numpy().ravel()
    raw = raw_test(storage, name)[1]  # unstandardized: predict standardizes as saved
    got = predict(exported[name], raw.x)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert r2_score(raw.y.astype(float), got.astype(float)) == pytest.approx(trial.value, abs=1e-5)


def test_export_of_a_chosen_trial(storage: str, tmp_path: Path) -> None:
    extra = export("lab", tmp_path / "t1.pt", storage=storage, trial=1)
    stored = load_study("lab", storage).trials[1]
    assert extra["trial"] == 1 and abs(extra["retrained_r2"] - stored.value) <= 1e-6
    with pytest.raises(ConfigError, match=r"no complete trial number 7; complete ones are"):
        export("lab", tmp_path / "t7.pt", storage=storage, trial=7)


def copy_study(
    storage: str,
    source: str,
    name: str,
    *,
    value_shift: float = 0.0,
    record_changes: dict[str, Any] | None = None,
) -> str:
    """A study holding the source's best trial, with its value or record altered."""
    best = best_trial(load_study(source, storage))
    study = optuna.create_study(
        study_name=name, storage=open_storage(storage), direction="maximize"
    )
    record = {**stored_record(load_study(source, storage)), **(record_changes or {})}
    write_record(study, record)
    study.add_trial(
        create_trial(
            state=TrialState.COMPLETE, value=best.value + value_shift, user_attrs=best.user_attrs,
            system_attrs=best.system_attrs,  # its params and history (hpo.store.attrs)
        )
    )
    return name


def test_a_stored_value_that_is_not_reproduced_warns(storage: str, tmp_path: Path) -> None:
    copy_study(storage, "lab", "lab-off", value_shift=0.01)
    with pytest.warns(RuntimeWarning, match=r"re-trained model of trial 0 scores test R²"):
        export("lab-off", tmp_path / "off.pt", storage=storage)


def test_cross_validated_study_is_refused_without_refit(storage: str, tmp_path: Path) -> None:
    copy_study(storage, "lab", "lab-cv", record_changes={"cv_folds": 3})
    with pytest.raises(
        ConfigError,
        match=r"scored by 3-fold cross-validation, expected one "
        r"train/test split: .* drop --no-refit",
    ):
        export("lab-cv", tmp_path / "cv.pt", storage=storage, refit=False)


# --- predict (Python) ---------------------------------------------------------------------


def test_predict_accepts_a_flat_list_and_a_frame(exported: dict[str, Path]) -> None:
    flat = predict(exported["lab"], [0.5, 1.0, 2.0])
    assert flat.shape == (3,)
    np.testing.assert_array_equal(flat, predict(exported["lab"], [[0.5], [1.0], [2.0]]))
    frame = pd.DataFrame({"hp": [110.0, 150.0], "wt": [2.6, 3.4], "name": ["a", "b"]})
    np.testing.assert_array_equal(
        predict(exported["cars"], frame), predict(exported["cars"], [[2.6, 110.0], [3.4, 150.0]])
    )


@pytest.mark.parametrize(
    "x, match",
    [
        ([1.0, 2.0], r"takes 2 feature\(s\) \(wt, hp\), but got input shaped \(2,\)"),
        ([[1.0, 2.0, 3.0]], r"but got input shaped \(1, 3\)"),
        ([[1.0, 2.0], [np.nan, 1.0]], r"input row 2 is not finite"),
        (pd.DataFrame({"wt": [1.0]}), r"column 'hp' not found"),
    ],
)
def test_predict_refuses_bad_input(exported: dict[str, Path], x: Any, match: str) -> None:
    with pytest.raises(DataError, match=match):
        predict(exported["cars"], x)


def test_predict_csv_keeps_the_rows_and_adds_predictions(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    csv = tmp_path / "new.csv"
    csv.write_text("name,wt,hp\nmazda,2.62,110\nvaliant,3.46,105\n", encoding="utf-8")
    frame = predict_csv(exported["cars"], csv)
    assert list(frame.columns) == ["name", "wt", "hp", "prediction"]
    assert list(frame["name"]) == ["mazda", "valiant"]
    np.testing.assert_array_equal(
        frame["prediction"].to_numpy(), predict(exported["cars"], [[2.62, 110], [3.46, 105]])
    )


# --- the commands -------------------------------------------------------------------------


def test_export_command(storage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "best.pt"
    assert main(["export", "lab", "--out", str(path), "--storage", storage]) == 0
    printed = capsys.readouterr().out
    assert "Saved trial" in printed and "hpo predict" in printed and path.is_file()


def test_predict_command_with_x(
    exported: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", str(exported["lab"]), "--x", "0.5", "--x", "3"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    expected = predict(exported["lab"], [0.5, 3.0])
    assert header.split() == ["x", "prediction"]  # each input next to its prediction
    assert [[np.float32(cell) for cell in row.split()] for row in rows] == [
        [np.float32(0.5), expected[0]], [np.float32(3.0), expected[1]]]


def test_predict_command_with_csv(
    exported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "new.csv"
    csv.write_text("wt,hp\n2.62,110\n3.46,105\n", encoding="utf-8")
    assert main(["predict", str(exported["cars"]), "--csv", str(csv)]) == 0
    printed = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    np.testing.assert_allclose(
        printed["prediction"], predict_csv(exported["cars"], csv)["prediction"], rtol=1e-6
    )
    assert (
        main(
            [
                "predict",
                str(exported["cars"]),
                "--csv",
                str(csv),
                "--out",
                str(tmp_path / "out.csv"),
            ]
        )
        == 0
    )
    assert list(pd.read_csv(tmp_path / "out.csv").columns) == ["wt", "hp", "prediction"]


FILES = {"bad.csv": b"wt,hp\n2.6,abc\n", "nohp.csv": b"wt\n2.6\n", "junk.pt": b"not a model"}
# argv with {cars}, {lab} (exported models) and {tmp} (a folder holding FILES) filled in.
PREDICT_MISTAKES = {
    "x on a 2-feature model": (["{cars}", "--x", "3.0"], "--x gives one feature per row, but"),
    "missing model": (["{tmp}/none.pt", "--x", "1"], "none.pt: no such file"),
    "not a model": (["{tmp}/junk.pt", "--x", "1"], "junk.pt: cannot be read"),
    "bad cell": (["{cars}", "--csv", "{tmp}/bad.csv"],
                 "bad.csv: column 'hp' row 1 holds 'abc', expected a number"),
    "missing column": (["{cars}", "--csv", "{tmp}/nohp.csv"], "nohp.csv: column 'hp' not found"),
    "missing csv": (["{cars}", "--csv", "{tmp}/no.csv"], "no.csv: no such file"),
    "nan x": (["{lab}", "--x", "nan"], "input row 1 is not finite"),
    "no input": (["{lab}"], "one of the arguments --x --csv is required"),
    "both inputs": (["{lab}", "--x", "1", "--csv", "a.csv"], "not allowed with"),
    "x not a number": (["{lab}", "--x", "three"], "invalid float value: 'three'"),
    "out without csv": (["{lab}", "--x", "1", "--out", "o.csv"],
                        "--out writes a CSV and goes with --csv"),
}


@pytest.mark.parametrize("case", list(PREDICT_MISTAKES))
def test_predict_mistakes_are_one_line(exported: dict[str, Path], tmp_path: Path, case: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    for name, content in FILES.items():
        (tmp_path / name).write_bytes(content)
    template, message = PREDICT_MISTAKES[case]
    argv = [arg.format(cars=exported["cars"], lab=exported["lab"], tmp=tmp_path)
            for arg in template]
    try:
        code = main(["predict", *argv])
    except SystemExit as exit_:  # argparse exits on a usage mistake
        code = int(exit_.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_export_mistakes_are_one_line(
    storage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "nope", "--out", str(tmp_path / "x.pt"), "--storage", storage]) == 2
    err = capsys.readouterr().err
    assert "No study named 'nope'" in err and err.count("\n") == 1


def test_a_manual_trial_exports_to_the_bit(tmp_path: Path) -> None:
    # Manual trials carry their thread count like search trials, so any stored trial
    # re-trains exactly: here one trained with 2 threads, exported from a 1-thread process.
    from hpo import LabData, Study
    from hpo.data import prepare_folds
    from hpo.results.retrain import retrain_trial
    from hpo.store.record import study_record
    from hpo.train.objective import evaluate
    from hpo.train.reporter import MemoryReporter

    study = Study(name="x", space=lambda t: {}, data=LabData(n=200), seed=0)
    params = {"hidden_layers": 1, "width": 16, "activation": "tanh", "optimizer": "adam",
              "lr": 0.01, "scheduler": "constant", "batch_size": 32, "epochs": 5}
    reporter = MemoryReporter()
    torch.set_num_threads(2)
    value = evaluate(params, prepare_folds(study.data, seed=0), reporter, seed=3)
    torch.set_num_threads(1)
    trial = optuna.trial.create_trial(value=value, user_attrs=reporter.attrs)
    assert trial.user_attrs["threads"] == 2
    _, _, result, _ = retrain_trial(trial, study_record(study))
    assert float(result.history["test_r2"].iloc[-1]) == value
