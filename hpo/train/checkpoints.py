"""Saving a trained model with the spec that rebuilds it, and loading it back safely.

Example:
    >>> save_model("best.pt", model, spec, extra={"test_r2": 0.98})   # doctest: +SKIP
    >>> model, spec, extra = load_model("best.pt")                      # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from hpo.errors import ConfigError, DataError
from hpo.train.models import ModelSpec, build_model

_FORMAT = "hpo.model/1"  # marks files written by save_model, so load_model can say what it read


def save_model(
    path: str | Path, model: nn.Module, spec: ModelSpec, extra: dict[str, Any] | None = None
) -> None:
    """Write ``model``'s weights, its ``spec`` and ``extra`` (plain types only) to ``path``.

    Example:
        >>> import tempfile
        >>> from hpo.train.models import ModelSpec, build_model
        >>> spec = ModelSpec(hidden=(8,))
        >>> path = Path(tempfile.mkdtemp()) / "best.pt"
        >>> save_model(path, build_model(spec, seed=0), spec, extra={"test_r2": 0.98})
        >>> model, loaded_spec, extra = load_model(path)
        >>> loaded_spec == spec, extra
        (True, {'test_r2': 0.98})
    """
    extra = {} if extra is None else extra
    _check_plain(extra, "extra")
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": _FORMAT, "spec": spec.to_dict(), "state": state, "extra": extra}, path)


def load_model(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, ModelSpec, dict[str, Any]]:
    """The ``(model, spec, extra)`` that `save_model` wrote; the model is in eval mode.

    Only tensors and plain types are read (``weights_only=True``), so a file from elsewhere
    cannot run code.
    """
    if not Path(path).is_file():
        raise DataError(f"{path}: no such file; expected a model written by save_model.")
    hint = "expected a model written by hpo.train.loop.save_model; re-save it"
    try:
        saved = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many kinds for a corrupt or foreign file
        raise DataError(f"{path}: cannot be read ({_one_line(exc)}); {hint}.") from None
    if not isinstance(saved, dict) or saved.get("format") != _FORMAT:
        raise DataError(f"{path}: not an hpo model file; {hint}.")
    try:
        spec = ModelSpec.from_dict(saved["spec"])
        model = build_model(spec)
        model.load_state_dict(_fold_batch_norm_biases(model, saved["state"]))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise DataError(
            f"{path}: spec and weights do not fit ({_one_line(exc)}); {hint}."
        ) from None
    return model.to(map_location).eval(), spec, dict(saved.get("extra", {}))


def _fold_batch_norm_biases(model: nn.Module, state: dict[str, Any]) -> dict[str, Any]:
    """The weights of a file saved before a Linear that batch norm follows lost its bias
    (`hpo.train.models`): each such bias folded into the batch norm's running mean, which
    gives the same outputs in eval mode ((x + b) - mean == x - (mean - b))."""
    if not isinstance(model, nn.Sequential):
        return state
    state = dict(state)
    for index in range(len(model) - 1):
        linear, norm = model[index], model[index + 1]
        key = f"{index}.bias"
        if (isinstance(linear, nn.Linear) and linear.bias is None and key in state
                and isinstance(norm, nn.BatchNorm1d)):
            mean = f"{index + 1}.running_mean"
            state[mean] = state[mean] - state.pop(key)
    return state


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc)
    # torch's weights_only errors open with a long advice text; the cause follows this marker.
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1].strip().split("\n\n")[0]
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_plain(value: Any, where: str) -> None:
    # weights_only loading refuses anything else, so refuse it when saving, where it is fixable.
    if value is None or isinstance(value, (str, int, float, bool)):
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
        return
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        for key, item in value.items():
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise ConfigError(
        f"`{where}` must hold plain types (str, int, float, bool, None, lists, dicts with str "
        f"keys), but got {type(value).__name__}; convert it, e.g. with float() or .tolist()."
    )
