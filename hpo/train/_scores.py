"""A population's history rows (a helper of `hpo.train.batched`)."""

from __future__ import annotations

import torch


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
