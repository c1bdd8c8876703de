"""hpo.results.plots on small in-memory studies whose trials are written by hand, so every case
(pruned, failed, diverged, nothing searched, cross-validated) is exact and fast."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from hpo.data import RegressionData
from hpo.results import plots
from hpo.store.attrs import trial_params, write_record
from search_spaces import lr_curve

EPOCHS = 8
FIXED = {
    "hidden_layers": 1,
    "width": 8,
    "activation": "tanh",
    "optimizer": "adam",
    "batch_size": 64,
    "epochs": EPOCHS,
}
SEARCHED = {
    "scheduler": CategoricalDistribution(["exponential", "cosine"]),
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def no_figure_left_open() -> Iterator[None]:
    yield
    plt.close("all")


def trial(
    state: TrialState,
    final_r2: float | None,
    *,
    scheduler: str = "cosine",
    lr: float = 0.01,
    epochs_run: int = EPOCHS,
    searched: bool = True,
) -> Any:
    """A stored trial as hpo's runner writes it: params, history, intermediate test R²."""
    params = {**FIXED, "scheduler": scheduler, "lr": lr}
    params.update(
        {"cosine_floor_fraction": 0.05}
        if scheduler == "cosine"
        else {"exponential_lr_final": lr / 100}
    )
    end = final_r2 if final_r2 is not None else 0.0
    r2 = np.linspace(end - 0.5, end, epochs_run)
    history = [
        {
            "epoch": e,
            "lr": lr,
            "train_mse": 1.0 - r / 2,
            "test_mse": 1.0 - r / 2 + 0.05,
            "test_r2": r,
        }
        for e, r in zip(range(1, epochs_run + 1), r2.tolist(), strict=True)
    ]
    return create_trial(
        state=state,
        value=final_r2 if state == TrialState.COMPLETE else None,
        params={"scheduler": scheduler, "lr": lr} if searched else {},
        distributions=SEARCHED if searched else {},
        user_attrs={"family": scheduler, "seed": 0},
        system_attrs={"params": params, "history": history},  # where hpo.store.attrs keeps them
        intermediate_values=dict(enumerate(r2.tolist(), start=1)),
    )


def study_of(*trials: Any) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for frozen in trials:
        study.add_trial(frozen)
    return study


def rich_study() -> optuna.Study:
    return study_of(
        trial(TrialState.COMPLETE, 0.80, lr=0.02),
        trial(TrialState.COMPLETE, 0.95, lr=0.05),
        trial(TrialState.COMPLETE, 0.60, scheduler="exponential", lr=0.01),
        trial(TrialState.COMPLETE, 0.40, lr=0.001),
        trial(TrialState.COMPLETE, 0.30, lr=0.0005),
        trial(TrialState.PRUNED, None, lr=0.0002, epochs_run=3),
        trial(TrialState.FAIL, None, lr=0.09, epochs_run=2),
    )


def sine_prediction(features: int) -> plots.Prediction:
    rng = np.random.default_rng(0)

    def part(n: int) -> RegressionData:
        x = rng.uniform(-2, 2, size=(n, features)).astype(np.float32)
        return RegressionData(
            x, np.sin(x.sum(axis=1)), tuple(f"x{i}" for i in range(features)), "y"
        )

    return plots.Prediction(
        trial=7,
        train=part(70),
        test=part(30),
        predict=lambda x: np.sin(x.sum(axis=1)),
        test_r2=0.9876,
    )


def assert_real_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    image = matplotlib.image.imread(path)  # (height, width, channels)
    assert image.shape[0] >= 200 and image.shape[1] >= 300
    assert np.unique(image[..., :3].round(2)).size > 10  # not blank: many shades drawn


DRAWINGS: dict[str, Callable[[], plots.Figure]] = {
    "history": lambda: plots.optimization_history(rich_study()),
    "intermediate": lambda: plots.intermediate_values(rich_study()),
    "lr_curves": lambda: plots.lr_curves(rich_study()),
    "prediction_1d": lambda: plots.prediction(sine_prediction(1)),
    "prediction_3d": lambda: plots.prediction(sine_prediction(3)),
    "mse": lambda: plots.mse_curves(rich_study().best_trial),
    "importances": lambda: plots.param_importances(rich_study()),
    "slice": lambda: plots.slice_view(rich_study()),
}


@pytest.mark.parametrize("name", DRAWINGS)
def test_every_figure_saves_as_a_readable_png(name: str, tmp_path: Path) -> None:
    figure = DRAWINGS[name]()
    path = tmp_path / f"{name}.png"
    figure.savefig(path, dpi=100)
    assert_real_png(path)
    suptitle = figure.get_suptitle()
    assert suptitle or all(ax.get_title(loc="left") or ax.get_title() for ax in figure.axes)
    assert all(ax.get_xlabel() or ax.get_ylabel() for ax in figure.axes if ax.get_visible())


def test_pruned_trials_are_dashed_red_and_end_where_pruned() -> None:
    figure = plots.intermediate_values(rich_study())
    lines = figure.axes[0].get_lines()
    dashed = [line for line in lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_color() == "tab:red"
    assert list(dashed[0].get_xdata()) == [1, 2, 3]
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert labels == ["complete", "pruned", "failed or running", "best (trial 1)",
                      "zoomed at right"]


def test_intermediate_values_zoom_on_the_top_band() -> None:
    figure = plots.intermediate_values(rich_study())
    every, zoom = figure.axes[:2]
    low, high = zoom.get_ylim()
    assert every.get_ylim()[0] < low < high <= every.get_ylim()[1]
    assert high - low < 0.5 * (every.get_ylim()[1] - every.get_ylim()[0])


def test_a_far_outlier_is_clipped_and_marked() -> None:
    values = [0.97, 0.975, 0.978, 0.979, 0.98, 0.5]
    study = study_of(*(trial(TrialState.COMPLETE, v) for v in values))
    for figure in (plots.optimization_history(study), plots.slice_view(study)):
        ax = figure.axes[0]
        assert ax.get_ylim()[0] > 0.9  # the others are not flattened by the 0.5
        texts = [text.get_text() for text in ax.texts]
        assert any("1 outlier below the axis (lowest 0.5)" in text for text in texts)


def test_the_best_trial_is_drawn_on_top() -> None:
    lines = plots.intermediate_values(rich_study()).axes[0].get_lines()
    best = [line for line in lines if line.get_label() == "best (trial 1)"]
    assert best and best[0] is lines[-1]
    assert best[0].get_ydata()[-1] == pytest.approx(0.95)


def test_a_diverged_r2_does_not_flatten_the_others() -> None:
    study = study_of(trial(TrialState.COMPLETE, 0.9), trial(TrialState.COMPLETE, -50.0))
    for figure in (plots.optimization_history(study), plots.intermediate_values(study)):
        assert figure.axes[0].get_ylim()[0] == plots.R2_FLOOR


def test_lr_curves_show_the_top_trials_of_each_family_with_their_schedule() -> None:
    study = rich_study()
    figure = plots.lr_curves(study, top=3)
    panels = {ax.get_title(): ax for ax in figure.axes if ax.get_visible()}
    assert set(panels) == {"cosine", "exponential"}
    cosine = panels["cosine"].get_lines()
    assert [line.get_label().split()[1] for line in cosine] == ["1", "0", "3"]  # best first
    expected = lr_curve(trial_params(study.trials[1]), epochs=EPOCHS)
    np.testing.assert_allclose(cosine[0].get_ydata(), expected)
    assert panels["cosine"].get_yscale() == "log"


def test_a_study_stored_before_the_move_to_system_attrs_still_draws() -> None:
    old = trial(TrialState.COMPLETE, 0.9)
    old.user_attrs.update(old.system_attrs)  # params and history as user attrs, as before
    old.system_attrs.clear()
    assert trial_params(old)["lr"] == 0.01
    line = plots.mse_curves(old).axes[0].get_lines()[0]
    assert len(line.get_ydata()) == EPOCHS


def test_figures_name_the_part_a_study_scored_its_trials_on() -> None:
    study = rich_study()
    assert plots.score_name(study) == "test R²"  # no hpo record: the lab's setting
    write_record(study, {"data": {"type": "LabData", "n": 200, "seed": 0}, "test_size": 0.3,
                         "validation_size": 0.2, "cv_folds": None, "seed": 0, "seeds": 1,
                         "score": "final", "sampler": "tpe", "pruner": "median"})
    assert plots.scored_part(study) == "validation"
    zoom = plots.intermediate_values(study).axes[1]
    assert zoom.get_ylabel() == "validation R²"
    history = plots.optimization_history(study).axes[0]
    assert history.get_title().startswith("Best validation R² so far")
    mse = plots.mse_curves(study.best_trial, scored=plots.scored_part(study)).axes[0]
    assert [line.get_label() for line in mse.get_lines()] == ["train MSE", "validation MSE"]


def test_lr_curves_fall_back_on_the_stored_lr_column() -> None:
    frozen = trial(TrialState.COMPLETE, 0.5, lr=0.03)
    del frozen.system_attrs["params"]["epochs"]  # the schedule cannot be rebuilt without it
    line = plots.lr_curves(study_of(frozen)).axes[0].get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), [0.03] * EPOCHS)


def test_prediction_of_one_feature_draws_the_curve_over_the_data() -> None:
    ax = plots.prediction(sine_prediction(1)).axes[0]
    assert len(ax.collections) == 2  # train and test points
    curve = ax.get_lines()[0]
    np.testing.assert_allclose(curve.get_ydata(), np.sin(curve.get_xdata()), atol=1e-6)
    assert "trial 7" in ax.get_title() and "0.9876" in ax.get_title()
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x0", "y")


def test_prediction_of_several_features_draws_predicted_against_actual() -> None:
    ax = plots.prediction(sine_prediction(3)).axes[0]
    assert len(ax.collections) == 2
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("actual y", "predicted y")
    diagonal = ax.get_lines()[0]
    np.testing.assert_allclose(diagonal.get_xdata(), diagonal.get_ydata())


def cross_validated() -> optuna.Study:
    frozen = trial(TrialState.COMPLETE, 0.5)
    frozen.system_attrs["history"] = [{"fold": 1, "test_r2": 0.5, "test_mse": 0.4}]
    return study_of(frozen)


SKIPS: list[tuple[str, Callable[[], plots.Figure], str]] = [
    (
        "history, nothing complete",
        lambda: plots.optimization_history(study_of(trial(TrialState.PRUNED, None))),
        "no complete trial",
    ),
    (
        "intermediate, nothing reported",
        lambda: plots.intermediate_values(study_of(create_trial(state=TrialState.FAIL))),
        "no trial reported",
    ),
    (
        "lr, nothing complete",
        lambda: plots.lr_curves(study_of(trial(TrialState.FAIL, None))),
        "no complete trial stores",
    ),
    (
        "mse, cross-validated",
        lambda: plots.mse_curves(cross_validated().best_trial),
        "no per-epoch MSE",
    ),
    (
        "importances, one trial",
        lambda: plots.param_importances(study_of(trial(TrialState.COMPLETE, 0.5))),
        "at least 2 complete trials.*has 1",
    ),
    (
        "importances, nothing searched",
        lambda: plots.param_importances(
            study_of(
                trial(TrialState.COMPLETE, 0.5, searched=False),
                trial(TrialState.COMPLETE, 0.6, searched=False),
            )
        ),
        "no param was searched",
    ),
    (
        "slice, nothing searched",
        lambda: plots.slice_view(study_of(trial(TrialState.COMPLETE, 0.5, searched=False))),
        "searched param",
    ),
]


@pytest.mark.parametrize(("case", "draw", "reason"), SKIPS, ids=[case for case, _, _ in SKIPS])
def test_a_figure_the_study_cannot_support_is_skipped_with_the_reason(
    case: str, draw: Callable[[], plots.Figure], reason: str
) -> None:
    with pytest.raises(plots.FigureSkipped, match=reason):
        draw()
