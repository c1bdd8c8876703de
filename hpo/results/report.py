"""A folder a person can open for one stored study: index.md, PNG figures and trials.csv.

``index.md`` holds the study's description, its trial counts by state, the leaderboard, the
best params and links to the figures; a figure the study cannot support yet (too few
complete trials, nothing searched, no hpo record of its data) is listed with the reason
instead. ``trials.csv`` has one row per trial (``hpo.results.tables.trials_frame``).

Example:
    >>> folder = write_report("lr-cosine", storage="hpo.journal")   # doctest: +SKIP
    >>> sorted(p.name for p in folder.iterdir())                   # doctest: +SKIP
    ['history.png', 'importances.png', 'index.md', ...]
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from hpo.errors import ConfigError, HPOError
from hpo.results import plots
from hpo.results.markdown import table as markdown_table
from hpo.results.plots import Figure, plt  # through plots, which picks the Agg backend first
from hpo.results.retrain import retrain_trial
from hpo.results.tables import leaderboard, load_study, trials_frame
from hpo.store.attrs import read_test_score, trial_params
from hpo.store.record import score_label, stored_record
from hpo.store.storage import existing_storage, shown
from hpo.store.summary import best_trial, state_counts

INDEX = "index.md"
TRIALS_CSV = "trials.csv"
LEADERBOARD_ROWS = 10
_HEADINGS = {"number": "trial", "value": "test R²", "epochs_run": "epochs run"}


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the report: its file, its heading, and how to draw it from the study."""

    file: str
    title: str
    draw: Callable[[optuna.Study], Figure]


@dataclass
class Report:
    """What ``make_report`` wrote: the folder, the figures drawn and those skipped (why)."""

    folder: Path
    figures: list[FigureSpec] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # file -> reason

    @property
    def index(self) -> Path:
        return self.folder / INDEX


def write_report(study_name: str, storage: str | None = None,
                 out: str | Path | None = None) -> Path:
    """Write the report of a stored study and return its folder.

    ``out`` defaults to ``hpo-report-<study>`` in the working folder; files already there
    are replaced.

    Raises:
        StorageError: the storage does not exist or cannot be opened.
        ConfigError: no study of that name (the message lists those that exist).
    """
    return make_report(study_name, storage, out).folder


def make_report(study_name: str, storage: str | None = None,
                out: str | Path | None = None, *, progress: bool = False) -> Report:
    """``write_report``, returning what was drawn and skipped as well as the folder.

    With ``progress``, shows the re-training of the best trial (for its prediction figure).
    """
    url = existing_storage(storage)
    study = load_study(study_name, url)
    report = Report(_out_folder(study_name, out))
    for spec in figure_specs(study, progress=progress):
        _write_figure(spec, study, report)
    trials_frame(study).to_csv(report.folder / TRIALS_CSV, index=False)
    report.index.write_text(index_markdown(study, url, report), encoding="utf-8")
    return report


def figure_specs(study: optuna.Study, *, progress: bool = False) -> list[FigureSpec]:
    """The report's figures, in the order index.md shows them."""
    step = "fold" if _record(study).get("cv_folds") else "epoch"
    label, part = plots.score_name(study), plots.scored_part(study)  # "validation R²", ...
    title = label[:1].upper() + label[1:]  # not str.capitalize(): "R²" stays upper case
    return [
        FigureSpec("history.png", f"Best {label} so far", plots.optimization_history),
        FigureSpec("intermediate.png", f"{title} per {step} (pruned trials "
                   "dashed)", lambda s: plots.intermediate_values(s, step=step)),
        FigureSpec("lr_curves.png", "Learning-rate schedules of the top trials per family",
                   plots.lr_curves),
        FigureSpec("prediction.png", "The best model's prediction over the data",
                   lambda s: plots.prediction(best_prediction(s, progress=progress))),
        FigureSpec("mse.png", f"Train and {part} MSE per epoch of the best trial",
                   lambda s: plots.mse_curves(_best(s), scored=part)),
        FigureSpec("importances.png", "Parameter importances", plots.param_importances),
        FigureSpec("slice.png", f"{title} against each searched parameter",
                   plots.slice_view),
    ]


def _write_figure(spec: FigureSpec, study: optuna.Study, report: Report) -> None:
    path = report.folder / spec.file
    opened = set(plt.get_fignums())
    try:
        # Optuna's views set ggplot globally; keep it local, with the projector's sizes.
        with plt.style.context(["ggplot", plots.PROJECTOR_STYLE]):
            spec.draw(study).savefig(path, dpi=plots.PROJECTOR_DPI, bbox_inches="tight")
        report.figures.append(spec)
    except (plots.FigureSkipped, HPOError) as reason:
        _skip(report, spec, path, str(reason))
    except Exception as error:  # a report with a note beats no report: never crash on a figure
        _skip(report, spec, path, f"could not be drawn ({type(error).__name__}: {error})")
    finally:
        for number in set(plt.get_fignums()) - opened:
            plt.close(number)


def _skip(report: Report, spec: FigureSpec, path: Path, reason: str) -> None:
    report.skipped[spec.file] = reason.strip().splitlines()[0] if reason.strip() else "skipped"
    path.unlink(missing_ok=True)  # an old run's figure would contradict the note


def best_prediction(study: optuna.Study, *, progress: bool = False) -> plots.Prediction:
    """Retrain the best trial on the study's first fold (hpo.results.retrain.retrain_trial).

    On the CPU this is the model the trial scored; a GPU-trained trial's may differ in the
    last digits.
    """
    trial = _best(study)
    record = stored_record(study)
    model, _, member, fold = retrain_trial(trial, record, trials=study.get_trials(deepcopy=False),
                                           progress=progress)
    cv_folds = record.get("cv_folds")
    return plots.Prediction(trial=trial.number, train=fold.train, test=fold.test,
                            predict=_predictor(model),
                            test_r2=float(member.rows[-1]["test_r2"]),
                            where=f"fold 1 of {cv_folds}" if cv_folds else "",
                            scored=plots.scored_part(study))


def _predictor(model: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    model = model.cpu().eval()  # batch norm and dropout in inference mode

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.as_tensor(x, dtype=torch.float32)).numpy()[:, 0]  # (n,)

    return predict


def _best(study: optuna.Study) -> optuna.trial.FrozenTrial:
    try:
        return best_trial(study)
    except ConfigError:
        raise plots.FigureSkipped("no complete trial yet (every trial was pruned or failed)"
                                  ) from None


def _record(study: optuna.Study) -> dict[str, object]:
    try:
        return stored_record(study)
    except ConfigError:
        return {}


def _out_folder(study_name: str, out: str | Path | None) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", study_name).strip("-") or "study"
    folder = Path(out) if out is not None else Path.cwd() / f"hpo-report-{safe}"
    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            f"Expected --out to name a folder, but {str(folder)!r} is a file; "
            "pass a new or existing folder."
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def index_markdown(study: optuna.Study, storage: str, report: Report) -> str:
    """The report's index.md: what the study is, how its trials went, what won, the figures."""
    return "\n".join([
        _about(study, storage), _state_table(study), _best_section(study),
        _leaderboard_section(study), _figures_section(report),
        f"Every trial, one row each with every param: [{TRIALS_CSV}]({TRIALS_CSV})\n",
    ])


def _about(study: optuna.Study, storage: str) -> str:
    record = _record(study)
    lines = [f"# Study `{study.study_name}`\n"]
    if record.get("description"):
        lines.append(f"{record['description']}\n")
    lines.append(f"- storage: `{shown(storage)}`")
    if not record:
        lines.append("- not created by `hpo run`: no record of its data")
        return "\n".join(lines) + "\n"
    data = dict(record["data"])  # type: ignore[call-overload]
    kind = data.pop("type")
    split = (f"test share {record['test_size']}, trials scored on "
             f"{score_label(record)}")
    lines.append(f"- data: {kind}({', '.join(f'{k}={v!r}' for k, v in data.items())}); {split}"
                 f"{'; standardized' if record.get('standardize') else ''}")
    lines.append(f"- search: sampler {record.get('sampler')}, pruner {record.get('pruner')}, "
                 f"score {record.get('score')}, seed {record.get('seed')}")
    return "\n".join(lines) + "\n"


def _state_table(study: optuna.Study) -> str:
    counts = state_counts(study)
    rows = [[state, str(n)] for state, n in counts.items()]
    rows.append(["total", str(sum(counts.values()))])
    return "## Trials by state\n\n" + _section_table(["state", "trials"], rows)


def _best_section(study: optuna.Study) -> str:
    try:
        trial = best_trial(study)
    except ConfigError:
        return "## Best trial\n\nNo complete trial yet: every trial was pruned or failed.\n"
    attrs = trial.user_attrs
    facts = ", ".join(f"{label} {_fmt(attrs[key], key)}" for key, label in (
        ("family", "schedule"), ("epochs_run", "epochs"), ("n_params", "parameters"),
        ("seconds", "seconds"), ("device", "on"), ("seed", "seed")) if key in attrs)
    rows = [[key, _fmt(value, key), "yes" if key in trial.params else "no"]
            for key, value in trial_params(trial).items()]
    label = score_label(_record(study)) if _record(study) else "R²"
    held_out = read_test_score(study) or {}
    test = (f" Scored once on the held-out test part after the search: test R² "
            f"**{held_out['test_r2']:.4f}**." if held_out.get("trial") == trial.number else "")
    return (f"## Best trial\n\nTrial {trial.number}: {label} **{_fmt(trial.value, 'value')}**"
            f" ({facts}).{test}\n\n" + _section_table(["param", "value", "searched"], rows))


def _leaderboard_section(study: optuna.Study) -> str:
    board = leaderboard(study, top=LEADERBOARD_ROWS)
    heading = f"## Leaderboard (top {LEADERBOARD_ROWS} complete trials, best first)\n\n"
    if board.empty:
        return heading + "No complete trial yet.\n"
    if "params_scheduler" in board and board["params_scheduler"].equals(board["family"]):
        board = board.drop(columns="params_scheduler")  # the family column says it already
    label = score_label(_record(study)) if _record(study) else "R²"
    headers = [label if c == "value" else _HEADINGS.get(c, c.removeprefix("params_"))
               for c in board.columns]
    rows = [[_fmt(value, str(column)) for column, value in row.items()]
            for row in board.to_dict(orient="records")]
    return heading + _section_table(headers, rows)


def _figures_section(report: Report) -> str:
    parts = ["## Figures\n"]
    parts += [f"### {spec.title}\n\n![{spec.title}]({spec.file})\n" for spec in report.figures]
    if report.skipped:
        parts.append("### Skipped figures\n")
        parts += [f"- `{file}`: {reason}" for file, reason in report.skipped.items()]
        parts.append("")
    return "\n".join(parts)


def _fmt(value: Any, column: str) -> str:
    """One format per kind of column, so a table reads down its columns."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool | np.bool_ | str):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if column == "value":
        return f"{float(value):.4f}"
    if column == "seconds":
        return f"{float(value):.2f}"
    return f"{float(value):.4g}" if isinstance(value, float | np.floating) else str(value)


def _section_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table that ends its section."""
    return markdown_table(headers, rows) + "\n"
