"""A population's padded fold data and history rows (helpers of `hpo.train.batched`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def padded(parts: Sequence[Any], device: torch.device
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each part's x and y, zero-padded to the most rows: ``(parts, rows, ...)``, and the
    mask of real rows, ``(parts, rows, 1)``."""
    tensors = [part.tensors(device) for part in parts]
    rows = max(len(x) for x, _ in tensors)
    x = torch.zeros(len(parts), rows, tensors[0][0].shape[1], dtype=tensors[0][0].dtype,
                    device=device)
    y = torch.zeros(len(parts), rows, tensors[0][1].shape[1], dtype=tensors[0][1].dtype,
                    device=device)
    mask = torch.zeros(len(parts), rows, 1, dtype=torch.bool, device=device)
    for i, (xi, yi) in enumerate(tensors):
        x[i, :len(xi)], y[i, :len(yi)], mask[i, :len(xi)] = xi, yi, True
    return x, y, mask


def rows(epochs: list[int], members: list[int], lrs: list[float],
         train: dict[str, torch.Tensor],
         test: dict[str, torch.Tensor]) -> dict[int, dict[str, float]]:
    """Each member's history row of this epoch (``epochs``: each member's own epoch)."""
    # One copy to the host per epoch; then plain floats, in `train`'s column order (the
    # epoch a float too, as the one-at-a-time path stores its history rows).
    values = torch.stack([train["loss"], test["loss"], train["mse"], test["mse"],
                          train["r2"], test["r2"]]).T.tolist()
    return {i: {"epoch": float(epoch), "lr": lr, "seconds": 0.0, "train_loss": v[0],
                "test_loss": v[1], "train_mse": v[2], "test_mse": v[3], "train_r2": v[4],
                "test_r2": v[5]}
            for i, epoch, lr, v in zip(members, epochs, lrs, values, strict=True)}
