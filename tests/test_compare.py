"""hpo.results.compare and ``hpo compare`` on studies stored by the real runner: every number in the
table is recomputed here from the storage or by training the configs by hand."""

from __future__ import annotations

import re
import statistics
import textwrap
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import optuna
import pandas as pd
import pytest
import scipy.stats
import torch
from matplotlib.container import ErrorbarContainer
from optuna.trial import TrialState, create_trial

from hpo import LabData, RunOptions, Study, run
from hpo.cli import main
from hpo.data import final_fold
from hpo.errors import ConfigError
from hpo.results.compare import compare, served_families
from hpo.results.compare_figure import MIN_SPAN
from hpo.results.compare_figure import figure as compare_figure
from hpo.results.export import export
from hpo.results.holdout import heldout_scores
from hpo.results.manual import load_manual
from hpo.results.plots import PROJECTOR_DPI, PROJECTOR_STYLE, plt
from hpo.results.retrain import replay
from hpo.results.tables import load_study, trial_history
from hpo.results.verdict import verdict_sentence
from hpo.store.attrs import trial_params, write_record
from hpo.store.record import data_source, folds_from_record, stored_record
from hpo.store.storage import open_storage
from hpo.train.loop import train_params
from hpo.train.objective import evaluate
from hpo.train.reporter import MemoryReporter
from search_spaces import (
    suggest_architecture,
    suggest_optimizer,
    suggest_scheduler,
    suggest_training,
)

SEEDS = 2
EPOCHS = 8
MANUAL = """
[defaults]
hidden_layers = 2
width = 8
activation = "tanh"
optimizer = "adam"
batch_size = 64
epochs = 8

[configs.exp-a]
who = "Ana"
family = "exponential"
lr = 0.05
exponential_lr_final = 0.001

[configs.exp-b]
who = "Ben"
family = "exponential"
lr = 0.01
exponential_lr_final = 0.0001
epochs = 6

[configs.cos-a]
who = "Ana"
family = "cosine"
lr = 0.02
cosine_floor_fraction = 0.0

[configs.step-c]
who = "Chen"
family = "step"
lr = 0.02
step_size_fraction = 0.25
step_gamma = 0.5
"""


def space_of(family: str) -> Any:
    def space(trial: Any) -> dict[str, Any]:
        return {
            **suggest_architecture(
                trial, hidden_layers=2, width=8, activation="tanh", batch_norm=False, dropout=0.0
            ),
            **suggest_optimizer(trial, optimizer="adam", weight_decay=0.0),
            **suggest_training(trial, batch_size=64, epochs=EPOCHS),
            **suggest_scheduler(trial, families=family),
        }

    return space



@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    """lr-exponential and lr-cosine as the homework runs them (TPE, median pruning), tiny."""
    path = str(tmp_path_factory.mktemp("storage") / "s.journal")
    for family in ("exponential", "cosine"):
        study = Study(
            name=f"lr-{family}",
            space=space_of(family),
            data=LabData(n=200),
            sampler="tpe",
            pruner="median",
            n_trials=6,
            seed=0,
        )
        run(study, RunOptions(storage=path, progress=False, workers=1))  # in-process
        torch.set_num_threads(1)  # the runner sets its own count
    return path


@pytest.fixture(scope="module")
def manual_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("manual") / "picks.toml"
    path.write_text(textwrap.dedent(MANUAL), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("out")


@pytest.fixture(scope="module")
def table(storage: str, manual_file: Path, out: Path) -> pd.DataFrame:
    return compare(
        manual_file, ["lr-exponential", "lr-cosine"], storage=storage, seeds=SEEDS, out=out
    )


def row_of(table: pd.DataFrame, family: str) -> pd.Series:
    return table[table["family"] == family].iloc[0]


def by_hand(storage: str, study: str, params: dict[str, Any]) -> list[float]:
    folds = folds_from_record(stored_record(load_study(study, storage)))
    return [evaluate(params, folds, MemoryReporter(), seed=seed) for seed in range(SEEDS)]


def first_beating(
    trials: list[optuna.trial.FrozenTrial], family: str, target: float
) -> optuna.trial.FrozenTrial | None:
    for trial in sorted(trials, key=lambda t: t.number):
        if (
            trial.state == TrialState.COMPLETE
            and trial.user_attrs["family"] == family
            and trial.value is not None
            and trial.value > target
        ):
            return trial
    return None


def epochs_of(trial: optuna.trial.FrozenTrial) -> int:
    return int(trial.user_attrs.get("epochs_run", len(trial.intermediate_values)))


# --- The numbers --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["exp-a", "exp-b", "cos-a"])
def test_manual_mean_equals_training_by_hand(
    storage: str, manual_file: Path, table: pd.DataFrame, name: str
) -> None:
    config = {c.name: c for c in load_manual(manual_file)}[name]
    study = f"lr-{config.family}"
    values = by_hand(storage, study, config.params)
    fold = folds_from_record(stored_record(load_study(study, storage)))[0]
    final = [
        train_params(config.params, fold, seed=s)[2].history["test_r2"].iloc[-1]
        for s in range(SEEDS)
    ]
    # The course's loop as an oracle, in float32: its rounding differs from the engine's
    # batched products in the last bits (float64 parity: tests/test_population.py).
    assert values == pytest.approx(final, abs=1e-6)
    scores = table.attrs["configs"].set_index("name").loc[name]
    # Trained alone here, in one population with the other configs there: the kernels
    # round by a model's place among the others, in the last bits.
    assert scores["mean_r2"] == pytest.approx(statistics.fmean(values), abs=1e-7)
    assert scores["sd_r2"] == pytest.approx(statistics.stdev(values), abs=1e-7)
    assert scores["epochs"] == config.params["epochs"] * SEEDS
    # Each stored run, replayed in the population it trained in, repeats to the bit.
    manual = load_study("picks-manual", storage)
    runs = [t for t in manual.trials if t.user_attrs.get("name") == name]
    record = stored_record(load_study(study, storage))
    assert len(runs) == SEEDS and all(
        replay(t, record, trials=manual.trials).value == t.value for t in runs)


def test_best_manual_is_the_config_with_the_highest_mean(table: pd.DataFrame) -> None:
    scores = table.attrs["configs"]
    exponential = scores[scores["family"] == "exponential"]
    best = exponential.loc[exponential["mean_r2"].idxmax()]
    row = row_of(table, "exponential")
    assert (row["best_manual"], row["best_manual_who"]) == (best["name"], best["who"])
    assert row["best_manual_r2"] == best["mean_r2"]


@pytest.mark.parametrize("family", ["exponential", "cosine"])
def test_search_numbers_equal_the_storage(storage: str, table: pd.DataFrame, family: str) -> None:
    study = load_study(f"lr-{family}", storage)
    row = row_of(table, family)
    assert row["study"] == f"lr-{family}"
    assert row["best_auto_r2"] == study.best_value
    assert row["best_auto_trial"] == study.best_trial.number
    trials = study.get_trials()
    assert row["trials_auto"] == len(trials)
    assert row["epochs_auto_total"] == sum(epochs_of(t) for t in trials)
    beat = first_beating(trials, family, row["best_manual_r2"])
    if beat is None:
        assert pd.isna(row["trials_to_beat"]) and pd.isna(row["epochs_auto_to_beat"])
    else:
        assert row["trials_to_beat"] == beat.number + 1
        assert row["beaten_by_trial"] == beat.number
        assert row["epochs_auto_to_beat"] == sum(
            epochs_of(t) for t in trials if t.number <= beat.number
        )


def heldout_by_hand(storage: str, study: str, params: dict[str, Any]) -> list[float]:
    """Trained on every non-test row with seeds 0 … SEEDS-1, the last epoch's test R²."""
    record = stored_record(load_study(study, storage))
    fold = final_fold(data_source(record), test_size=record["test_size"], seed=record["seed"])
    assert fold is not None
    return [float(train_params(params, fold, seed=s)[2].history["test_r2"].iloc[-1])
            for s in range(SEEDS)]


@pytest.mark.parametrize("family", ["exponential", "cosine"])
def test_held_out_test_scores_equal_training_by_hand(
    storage: str, manual_file: Path, table: pd.DataFrame, family: str
) -> None:
    row = row_of(table, family)
    study = load_study(f"lr-{family}", storage)
    picked = {c.name: c for c in load_manual(manual_file)}[row["best_manual"]]
    manual = heldout_by_hand(storage, study.study_name, picked.params)
    search = heldout_by_hand(storage, study.study_name, trial_params(study.best_trial))
    assert row["chosen_on"] == "validation R²"
    # The course's loop as an oracle, in float32: within its rounding of the engine's.
    assert row["test_manual"] == pytest.approx(statistics.fmean(manual), abs=1e-6)
    assert row["test_manual_sd"] == pytest.approx(statistics.stdev(manual), abs=1e-6)
    assert row["test_search"] == pytest.approx(statistics.fmean(search), abs=1e-6)
    assert row["test_search_sd"] == pytest.approx(statistics.stdev(search), abs=1e-6)
    # And to the bit against the engine's own heldout scores, trained here alone.
    record = stored_record(study)
    assert row["test_manual"] == statistics.fmean(heldout_scores(picked.params, record,
                                                                 list(range(SEEDS))))
    tested = table.attrs["test"][table.attrs["test"]["family"] == family]
    top = sorted((t for t in study.get_trials() if t.value is not None
                  and t.state == TrialState.COMPLETE), key=lambda t: -float(t.value))[:3]
    assert list(tested[tested["side"] == "search"]["name"]) == [f"trial {t.number}" for t in top]
    assert tested[tested["side"] == "hand-picked"]["chosen_r2"].is_monotonic_decreasing


@pytest.mark.parametrize("family", ["exponential", "cosine"])
def test_interval_equals_a_direct_computation(table: pd.DataFrame, family: str) -> None:
    row = row_of(table, family)
    tested = table.attrs["test"][table.attrs["test"]["family"] == family]
    manual = tested[tested["side"] == "hand-picked"].iloc[0]["scores"]
    search = tested[tested["side"] == "search"].iloc[0]["scores"]
    diffs = [s - m for s, m in zip(search, manual, strict=True)]
    half = scipy.stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / len(diffs) ** 0.5
    mean = statistics.fmean(diffs)
    assert row["diff"] == pytest.approx(mean, abs=1e-12)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((mean - half, mean + half), abs=1e-12)
    assert row["verdict"] == verdict_sentence(mean, mean - half, mean + half)


def test_manual_epochs_are_epochs_times_seeds_times_configs(table: pd.DataFrame) -> None:
    assert row_of(table, "exponential")["epochs_manual"] == (8 + 6) * SEEDS
    assert row_of(table, "cosine")["epochs_manual"] == 8 * SEEDS


def test_family_without_a_study_gets_a_row_without_numbers(table: pd.DataFrame) -> None:
    row = row_of(table, "step")
    assert row["manual_configs"] == 1 and row["epochs_manual"] == 0
    assert pd.isna(row["study"]) and pd.isna(row["best_auto_r2"]) and pd.isna(row["best_manual_r2"])


# --- The storage --------------------------------------------------------------------------


def test_manual_trials_are_stored_tagged_with_their_values(
    storage: str, manual_file: Path, table: pd.DataFrame
) -> None:
    stored = load_study("picks-manual", storage).get_trials()
    configs = {c.name: c for c in load_manual(manual_file)}
    assert sorted((t.user_attrs["name"], t.user_attrs["seed"]) for t in stored) == sorted(
        (name, seed) for name in ("exp-a", "exp-b", "cos-a") for seed in range(SEEDS)
    )
    for trial in stored:
        attrs = trial.user_attrs
        config = configs[attrs["name"]]
        assert trial.state == TrialState.COMPLETE
        assert (attrs["source"], attrs["who"], attrs["family"]) == (
            "manual",
            config.who,
            config.family,
        )
        assert trial_params(trial) == config.params and attrs["study"] == f"lr-{config.family}"
        # Alone here, among the other configs there: equal to the last bits' rounding.
        assert trial.value == pytest.approx(
            by_hand(storage, attrs["study"], config.params)[attrs["seed"]], abs=1e-7)
        history = trial_history(trial).to_dict(orient="records")
        assert "history" not in attrs and "params" not in attrs  # kept out of the dashboard
        assert len(history) == attrs["epochs_run"] == config.params["epochs"]
        assert attrs["threads"] >= 1  # recorded by the objective: export can reproduce it
        assert attrs["n_params"] > 0 and attrs["seconds"] > 0 and attrs["ended"] == "completed"
        assert trial.intermediate_values == {
            row["epoch"]: row["test_r2"] for row in history
        }


def test_manual_study_keeps_the_shared_record(storage: str, table: pd.DataFrame) -> None:
    record = stored_record(load_study("picks-manual", storage))
    assert record["data"] == stored_record(load_study("lr-cosine", storage))["data"]
    assert (record["sampler"], record["pruner"]) == ("manual", "none")


def test_best_manual_run_can_be_exported(storage: str, table: pd.DataFrame,
                                         tmp_path: Path) -> None:
    extra = export("picks-manual", tmp_path / "manual.pt", storage=storage, as_trained=True)
    best = load_study("picks-manual", storage).best_trial
    assert extra["trial"] == best.number and extra["retrained_r2"] == pytest.approx(
        best.value, abs=1e-6)
    refit = export("picks-manual", tmp_path / "refit.pt", storage=storage)
    assert refit["model"] == "refit" and refit["stored_r2"] is None  # no test score stored


def test_second_compare_reuses_the_stored_runs(
    storage: str, manual_file: Path, table: pd.DataFrame
) -> None:
    before = len(load_study("picks-manual", storage).get_trials())
    again = compare(manual_file, ["lr-exponential", "lr-cosine"], storage=storage, seeds=SEEDS)
    assert len(load_study("picks-manual", storage).get_trials()) == before
    pd.testing.assert_frame_equal(again, table)


# --- The files and the command ------------------------------------------------------------


def test_markdown_and_figure_are_written(table: pd.DataFrame, out: Path) -> None:
    text = (out / "compare.md").read_text(encoding="utf-8")
    row = row_of(table, "exponential")
    assert (
        f"| exponential | lr-exponential | {row['best_manual']} ({row['best_manual_who']}) "
        f"| {row['best_manual_r2']:.4f} ± {row['best_manual_sd']:.4f} "
        f"| {row['best_auto_r2']:.4f} (trial {row['best_auto_trial']}) |"
    ) in text
    assert "| step | no study given |" in text
    assert "| cos-a | Ana | cosine | lr-cosine |" in text
    image = matplotlib.image.imread(out / "compare.png")
    width, height = PROJECTOR_STYLE["figure.figsize"]  # the report's canvas: 1280×720
    assert image.shape[:2] == (round(height * PROJECTOR_DPI), round(width * PROJECTOR_DPI))


def test_the_figure_shows_each_configs_seed_spread_on_an_axis_that_does_not_zoom(
    storage: str, table: pd.DataFrame
) -> None:
    served = {family: load_study(f"lr-{family}", storage) for family in ("exponential", "cosine")}
    drawn = compare_figure(table, served)
    configs = table.attrs["configs"]
    top_row = [ax for ax in drawn.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title().split()[0] for ax in top_row] == ["exponential", "cosine"]
    for ax in top_row:
        family = ax.get_title().split()[0]
        mine = configs[(configs["family"] == family) & configs["mean_r2"].notna()]
        bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(bars) == len(mine) > 0  # one error bar per hand-picked config
        drawn_spread = sorted(np.ptp(c.lines[2][0].get_segments()[0][:, 1]) for c in bars)
        np.testing.assert_allclose(drawn_spread, sorted(2 * mine["sd_r2"].fillna(0.0)))
        low, high = ax.get_ylim()
        assert high - low >= MIN_SPAN - 1e-12  # no zoom onto a few 1e-4
        assert high <= 1.0
    plt.close(drawn)


def test_cli_prints_the_table(
    storage: str,
    manual_file: Path,
    table: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "compare",
            str(manual_file),
            "lr-exponential",
            "lr-cosine",
            "--seeds",
            str(SEEDS),
            "--storage",
            storage,
            "--out",
            str(tmp_path / "c"),
        ]
    )
    captured = capsys.readouterr()
    printed = captured.out
    assert code == 0
    assert "| exponential | lr-exponential |" in printed and "picks-manual" in printed
    # Progress, piped (stderr is captured): both trainings phases, a few lines each.
    err = captured.err.splitlines()
    runs = len(load_manual(manual_file)) * SEEDS
    assert f"hand-picked configs: {runs} trainings to run" in err
    assert any(line.startswith(f"hand-picked configs: {runs}/{runs} trainings") for line in err)
    tested = [re.fullmatch(r"held-out test: (\d+)/\1 trainings.*", line) for line in err]
    assert any(tested) and len(err) <= 20 and "\r" not in captured.err
    assert (tmp_path / "c" / "compare.png").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["lr-nope"], "No study named 'lr-nope'"),
        (["lr-exponential", "--seeds", "0"], "argument --seeds: expected a positive integer"),
    ],
)
def test_cli_mistakes_are_one_line(
    storage: str,
    manual_file: Path,
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    try:
        code = main(["compare", str(manual_file), *argv, "--storage", storage])
    except SystemExit as exit_:  # argparse exits on a usage mistake
        code = int(exit_.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_python_api_refuses_zero_seeds(storage: str, manual_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"`seeds` must be an int >= 1, but got 0"):
        compare(manual_file, ["lr-cosine"], storage=storage, seeds=0)


def test_no_study_of_the_manual_families_is_refused(storage: str, tmp_path: Path) -> None:
    path = tmp_path / "only.toml"
    path.write_text(
        textwrap.dedent(MANUAL).split("[configs.exp-a]")[0]
        + "[configs.s]\nwho = 'x'\nfamily = 'step'\nlr = 0.01\n"
        "step_size_fraction = 0.5\nstep_gamma = 0.5\n",
        encoding="utf-8",
    )
    with pytest.raises(
        ConfigError,
        match=r"No given study serves a family of the manual "
        r"configs \(step\); the studies serve cosine",
    ):
        compare(path, ["lr-cosine"], storage=storage)


# --- A mixed-family study ----------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed(storage: str, manual_file: Path) -> str:
    """A study of both families with known values: exponential is beaten at its 4th trial
    (after a pruned cosine trial), cosine never is; a failed trial ends it. Its trials hold
    the params of a hand-picked config of their family, for the verdict to train."""
    params = {c.family: c.params for c in reversed(load_manual(manual_file))}
    study = optuna.create_study(
        study_name="mixed", storage=open_storage(storage), direction="maximize"
    )
    write_record(study, stored_record(load_study("lr-exponential", storage)))
    for state, value, family, epochs in [
        (TrialState.COMPLETE, -0.2, "exponential", 8),
        (TrialState.PRUNED, None, "cosine", 3),
        (TrialState.COMPLETE, -0.5, "cosine", 8),
        (TrialState.COMPLETE, 0.999, "exponential", 8),
        (TrialState.FAIL, None, "exponential", None),
    ]:
        attrs = {"family": family, "params": params[family], "seed": 0,
                 **({"epochs_run": epochs} if epochs else {})}
        study.add_trial(
            create_trial(
                state=state, value=value, user_attrs=attrs, intermediate_values={1: 0.0, 2: 0.1}
            )
        )
    return "mixed"


def test_mixed_study_serves_each_family_and_counts_every_trial(
    storage: str, manual_file: Path, mixed: str
) -> None:
    assert served_families(load_study(mixed, storage)) == ["exponential", "cosine"]
    table = compare(manual_file, [mixed], storage=storage, seeds=1)
    exponential, cosine = row_of(table, "exponential"), row_of(table, "cosine")
    assert exponential["best_manual_r2"] < 0.999 and cosine["best_manual_r2"] > -0.5
    assert (exponential["best_auto_r2"], exponential["best_auto_trial"]) == (0.999, 3)
    assert (exponential["trials_to_beat"], exponential["epochs_auto_to_beat"]) == (4, 27)
    assert exponential["epochs_auto_total"] == cosine["epochs_auto_total"] == 29
    assert pd.isna(cosine["trials_to_beat"]) and cosine["best_auto_r2"] == -0.5


def test_two_studies_of_one_family_are_refused(storage: str, manual_file: Path, mixed: str) -> None:
    with pytest.raises(
        ConfigError,
        match=r"Studies 'lr-exponential' and 'mixed' both serve "
        r"family 'exponential'",
    ):
        compare(manual_file, ["lr-exponential", mixed], storage=storage)


def test_a_diverging_config_is_stored_failed_and_never_best(storage: str, tmp_path: Path) -> None:
    path = tmp_path / "boom.toml"
    path.write_text(textwrap.dedent(MANUAL).split("[configs.exp-b]")[0]
                    + "[configs.boom]\nwho = 'x'\nfamily = 'exponential'\nlr = 1e30\n"
                      "exponential_lr_final = 0.001\n", encoding="utf-8")
    table = compare(path, ["lr-exponential"], storage=storage, seeds=1, out=tmp_path)
    boom = table.attrs["configs"].set_index("name").loc["boom"]
    assert pd.isna(boom["mean_r2"]) and boom["diverged"] == 1
    assert row_of(table, "exponential")["best_manual"] == "exp-a"
    [failed] = [t for t in load_study("boom-manual", storage).get_trials()
                if t.user_attrs["name"] == "boom"]
    assert failed.state == TrialState.FAIL and failed.user_attrs["ended"] == "diverged"
    assert "| boom | x | exponential | lr-exponential | diverged (1 seeds) |" in (
        tmp_path / "compare.md").read_text(encoding="utf-8")


def test_compare_trains_with_one_thread_whatever_the_callers_count(
    storage: str, manual_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hpo.results.holdout
    import hpo.results.manual

    seen: list[int] = []
    for module in (hpo.results.manual, hpo.results.holdout):
        real = module.evaluate_many

        def spy(*args: Any, real: Any = real, **kwargs: Any) -> Any:
            seen.append(torch.get_num_threads())
            return real(*args, **kwargs)

        monkeypatch.setattr(module, "evaluate_many", spy)
    fresh = tmp_path / "fresh.toml"  # another manual study: its runs are trained, not reused
    fresh.write_text(manual_file.read_text())
    torch.set_num_threads(2)
    try:
        compare(fresh, ["lr-exponential"], storage=storage, seeds=1, top=1)
        assert torch.get_num_threads() == 2  # given back
    finally:
        torch.set_num_threads(1)
    assert seen and set(seen) == {1}, seen
