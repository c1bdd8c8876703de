"""Hand-picked configs: the homework file resolves to full params, and every kind of mistake
in a TOML entry is refused in one line naming the entry and the field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from hpo.errors import ConfigError
from hpo.results.manual import SHARED_KEYS, ManualConfig, load_manual, manual_study_name
from hpo.train.objective import check_params, model_spec
from search_spaces import FAMILIES, build_optimizer, build_scheduler, family_keys, lr_curve

HOMEWORK = Path(__file__).resolve().parents[1] / "studies" / "homework_manual.toml"
LAB_NETWORK = {
    "hidden_layers": 2,
    "width": 20,
    "activation": "tanh",
    "optimizer": "adam",
    "batch_size": 64,
    "epochs": 50,
}

DEFAULTS = """
[defaults]
hidden_layers = 2
width = 20
activation = "tanh"
optimizer = "adam"
batch_size = 64
epochs = 50
"""


def write(tmp_path: Path, body: str, defaults: str = DEFAULTS) -> Path:
    path = tmp_path / "picks.toml"
    path.write_text(textwrap.dedent(defaults) + textwrap.dedent(body), encoding="utf-8")
    return path


def by_name(configs: list[ManualConfig]) -> dict[str, ManualConfig]:
    return {config.name: config for config in configs}


# --- The homework file ----------------------------------------------------------------------


def test_homework_file_resolves_every_entry_to_complete_params() -> None:
    configs = load_manual(HOMEWORK)
    for config in configs:
        check_params(config.params)
        model = torch.nn.Linear(1, 1)
        optimizer = build_optimizer(config.params, model.parameters())
        build_scheduler(optimizer, config.params, epochs=config.params["epochs"])
        model_spec(config.params, in_features=1)
        assert config.params["scheduler"] == config.family
        assert set(config.params) >= {*SHARED_KEYS, "scheduler", *family_keys(config.family)}


def test_homework_file_holds_the_lectures_choices() -> None:
    configs = by_name(load_manual(HOMEWORK))
    exponential = configs["lecture-exponential"]
    assert exponential.who == "lecture"
    assert {k: exponential.params[k] for k in LAB_NETWORK} == LAB_NETWORK
    assert exponential.params["lr"] == 0.1 and exponential.params["exponential_lr_final"] == 0.001
    curve = lr_curve(exponential.params, epochs=50)
    assert curve[0] == pytest.approx(0.1) and curve[-1] == pytest.approx(0.001 * 10 ** (2 / 50))
    assert configs["lecture-exponential-bn"].params["batch_norm"] is True
    step = configs["lecture-step"].params
    assert round(step["step_size_fraction"] * step["epochs"]) == 3  # "every 3 epochs"
    assert configs["lecture-cosine"].family == "cosine"


@pytest.mark.parametrize("family", ["exponential", "step", "cosine"])
def test_homework_file_has_student_picks_for_every_lab_family(family: str) -> None:
    whos = {c.who for c in load_manual(HOMEWORK) if c.family == family}
    assert "lecture" in whos and len(whos - {"lecture"}) >= 2


def test_manual_study_is_named_after_the_file() -> None:
    assert manual_study_name(HOMEWORK) == "homework_manual-manual"


# --- Resolution ---------------------------------------------------------------------------


def test_entries_override_defaults_and_optional_knobs_default_to_off(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [configs.mine]
        who = "me"
        family = "cosine"
        note = "wider"
        lr = 0.02
        cosine_floor_fraction = 0.0
        width = 40
        """,
    )
    [config] = load_manual(path)
    assert (config.name, config.who, config.family, config.note) == (
        "mine",
        "me",
        "cosine",
        "wider",
    )
    assert config.params == {
        "hidden_layers": 2,
        "width": 40,
        "activation": "tanh",
        "batch_norm": False,
        "dropout": 0.0,
        "optimizer": "adam",
        "weight_decay": 0.0,
        "momentum": None,
        "nesterov": None,
        "batch_size": 64,
        "epochs": 50,
        "scheduler": "cosine",
        "lr": 0.02,
        "cosine_floor_fraction": 0.0,
    }


def test_family_keys_in_defaults_apply_only_to_that_family(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        cosine_floor_fraction = 0.05
        lr = 0.01

        [configs.a]
        who = "a"
        family = "cosine"

        [configs.b]
        who = "b"
        family = "exponential"
        exponential_lr_final = 0.0001
        """,
    )
    configs = by_name(load_manual(path))
    assert configs["a"].params["cosine_floor_fraction"] == 0.05
    assert "cosine_floor_fraction" not in configs["b"].params
    assert configs["a"].params["lr"] == configs["b"].params["lr"] == 0.01


def test_sgd_momentum_and_linear_regression_resolve(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [configs.sgd]
        who = "s"
        family = "step"
        optimizer = "sgd"
        momentum = 0.9
        nesterov = true
        lr = 0.01
        step_size_fraction = 0.2
        step_gamma = 0.5

        [configs.linear]
        who = "l"
        family = "constant"
        hidden_layers = 0
        lr = 0.01
        """,
        defaults='[defaults]\nhidden_layers = 1\nbatch_size = "full"\nepochs = 10\n'
        'optimizer = "adam"\nwidth = 20\nactivation = "tanh"\n',
    )
    configs = by_name(load_manual(path))
    assert configs["sgd"].params["momentum"] == 0.9 and configs["sgd"].params["nesterov"] is True
    assert configs["linear"].params["width"] is None  # from [defaults]: does not apply, not refused
    assert configs["linear"].params["batch_size"] == "full"


# --- Mistakes -----------------------------------------------------------------------------

ENTRY = '[configs.pick]\nwho = "me"\nfamily = "cosine"\nlr = 0.01\ncosine_floor_fraction = 0.0\n'

BAD_ENTRIES = {
    "unknown family": (
        ENTRY.replace('"cosine"', '"cosine_annealing"'),
        r"config 'pick': `family` must be one of \['constant', 'exponential'",
    ),
    "unknown key": (
        ENTRY + "step_gamma = 0.5\n",
        r"config 'pick': unknown key step_gamma for family 'cosine'; valid keys "
        r"are \[.*'cosine_floor_fraction'\]",
    ),
    "misspelled key": (
        ENTRY + "learning_rate = 0.1\n",
        r"config 'pick': unknown key learning_rate",
    ),
    "lr as a string": (
        ENTRY.replace("lr = 0.01", 'lr = "0.01"'),
        r"config 'pick': `lr` must be a number in \(0.0, inf\), but got '0.01'",
    ),
    "negative lr": (
        ENTRY.replace("lr = 0.01", "lr = -0.1"),
        r"config 'pick': `lr` must be a number in \(0.0, inf\), but got -0.1",
    ),
    "zero lr": (ENTRY.replace("lr = 0.01", "lr = 0"), r"config 'pick': `lr` must be"),
    "float epochs": (ENTRY + "epochs = 50.5\n", r"config 'pick': `epochs` must be an int >= 1"),
    "zero epochs": (ENTRY + "epochs = 0\n", r"config 'pick': `epochs` must be an int >= 1"),
    "bool as epochs": (ENTRY + "epochs = true\n", r"config 'pick': `epochs` must be an int"),
    "batch norm as text": (ENTRY + 'batch_norm = "yes"\n', r"config 'pick': `batch_norm` must"),
    "dropout of one": (ENTRY + "dropout = 1.0\n", r"config 'pick': `dropout` must be a number"),
    "bad batch size": (ENTRY + 'batch_size = "half"\n', r"config 'pick': `batch_size` must be"),
    "bad activation": (ENTRY + 'activation = "sigmoid"\n', r"config 'pick': `activation` must"),
    "bad optimizer": (ENTRY + 'optimizer = "lbfgs"\n', r"config 'pick': `optimizer` must be"),
    "floor above one": (
        ENTRY.replace("fraction = 0.0", "fraction = 1.5"),
        r"config 'pick': `cosine_floor_fraction` must be a number in \[0.0, 1.0\]",
    ),
    "gamma of one": (
        '[configs.pick]\nwho = "me"\nfamily = "step"\nlr = 0.01\n'
        "step_size_fraction = 0.1\nstep_gamma = 0\n",
        r"config 'pick': `step_gamma` must be a number in \(0.0, 1.0\]",
    ),
    "list as a value": (ENTRY.replace("lr = 0.01", "lr = [0.01, 0.1]"), r"config 'pick': `lr`"),
    "who missing": (
        ENTRY.replace('who = "me"\n', ""),
        r"config 'pick': the field `who` is missing; add e.g. who = \"your name\"",
    ),
    "family missing": (
        ENTRY.replace('family = "cosine"\n', ""),
        r"config 'pick': the field `family` is missing",
    ),
    "who not a string": (
        ENTRY.replace('who = "me"', "who = 3"),
        r"config 'pick': `who` must be a non-empty string, but got 3",
    ),
    "who empty": (ENTRY.replace('who = "me"', 'who = " "'), r"config 'pick': `who` must be"),
    "family key missing": (
        ENTRY.replace("cosine_floor_fraction = 0.0\n", ""),
        r"config 'pick': the field `cosine_floor_fraction` is missing",
    ),
    "lr missing": (ENTRY.replace("lr = 0.01\n", ""), r"config 'pick': the field `lr` is missing"),
    "momentum with adam": (
        ENTRY + "momentum = 0.9\n",
        r"config 'pick': `momentum` does not apply here: it needs "
        r"optimizer sgd or rmsprop, but got optimizer='adam'",
    ),
    "nesterov without momentum": (
        ENTRY + 'optimizer = "sgd"\nnesterov = true\n',
        r"config 'pick': `nesterov` does not apply here: it needs "
        r"optimizer sgd with momentum > 0, but got optimizer='sgd', "
        r"momentum=0.0",
    ),
    "entry not a table": ("[configs]\npick = 3\n", r"\[configs.pick\] must be a table"),
    "syntax error": (ENTRY + "lr = \n", r"not valid TOML: .*line 14"),
    "duplicate key": (ENTRY + "lr = 0.02\n", r"not valid TOML: .*line 14"),
    "unknown top table": (
        "[config.pick]\nwho = 'me'\n",
        r"expected only the tables \['defaults', 'configs'\] at the top, but "
        r"got \['config'\]",
    ),
    "no configs": ("", r"expected at least one \[configs.NAME\] table"),
}


@pytest.mark.parametrize("body, match", BAD_ENTRIES.values(), ids=BAD_ENTRIES.keys())
def test_bad_entries_are_refused_naming_entry_and_field(
    tmp_path: Path, body: str, match: str
) -> None:
    with pytest.raises(ConfigError, match=match) as caught:
        load_manual(write(tmp_path, body))
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(tmp_path))


BAD_DEFAULTS = {
    "unknown key": ("[defaults]\nwidht = 20\n", r"\[defaults\] got unknown \['widht'\]"),
    "who in defaults": ('[defaults]\nwho = "me"\n', r"\[defaults\] got unknown \['who'\]"),
    "bad value": (
        '[defaults]\nhidden_layers = 2\nwidth = -3\nactivation = "tanh"\n'
        'optimizer = "adam"\nbatch_size = 64\nepochs = 5\n',
        r"config 'pick' \(from \[defaults\]\): `width` must be an int >= 1",
    ),
    "required only in neither": (
        '[defaults]\nhidden_layers = 2\nactivation = "tanh"\n'
        'optimizer = "adam"\nbatch_size = 64\nepochs = 5\n',
        r"config 'pick': the field `width` is missing.*add it to the "
        r"config or to \[defaults\]",
    ),
    "defaults not a table": ("defaults = 3\n", r"\[defaults\] must be a table"),
}


@pytest.mark.parametrize("defaults, match", BAD_DEFAULTS.values(), ids=BAD_DEFAULTS.keys())
def test_bad_defaults_are_refused(tmp_path: Path, defaults: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_manual(write(tmp_path, ENTRY, defaults=defaults))


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.toml: no such file"):
        load_manual(tmp_path / "nope.toml")


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_resolves_with_its_own_keys(tmp_path: Path, family: str) -> None:
    values = {
        "exponential_lr_final": 0.001,
        "step_size_fraction": 0.1,
        "step_gamma": 0.5,
        "cosine_floor_fraction": 0.0,
        "multistep_first_fraction": 0.3,
        "multistep_second_fraction": 0.7,
        "multistep_gamma": 0.5,
        "cosine_restarts_period_fraction": 0.2,
        "cosine_restarts_mult": 2,
        "cosine_restarts_floor_fraction": 0.0,
        "onecycle_pct_start": 0.3,
        "onecycle_div_factor": 10.0,
        "onecycle_final_div_factor": 100.0,
        "plateau_factor": 0.5,
        "plateau_patience": 3,
        "warmup_cosine_warmup_fraction": 0.1,
        "warmup_cosine_floor_fraction": 0.0,
    }
    lines = "\n".join(f"{key} = {values[key]}" for key in family_keys(family))
    [config] = load_manual(
        write(tmp_path, f'[configs.x]\nwho = "w"\nfamily = "{family}"\nlr = 0.01\n{lines}\n')
    )
    curve = lr_curve(config.params, epochs=10)
    assert config.family == family and len(curve) == 10 and all(lr > 0 for lr in curve)
