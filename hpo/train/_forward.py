"""A population's forward pass: every model's output from the stacked weights, with each
model's own activation, batch norm and dropout (helpers of `hpo.train.batched`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from hpo.train._kernels import baddbmm, whole_vectors

if TYPE_CHECKING:
    from hpo.train.batched import Population

_BN_EPS, _BN_MOMENTUM = 1e-5, 0.1  # nn.BatchNorm1d's defaults


def forward(pop: Population, x: torch.Tensor, *, training: bool,
            rows: torch.Tensor | None = None) -> torch.Tensor:
    """The models' outputs ``(models, batch, out)``; ``rows`` marks the real rows of a
    padded batch (batch norm's statistics read only those)."""
    weights = pop.weights
    masks, per_layer = pop.masks, pop.layout.per_layer
    draws = (_dropout_masks(pop, (pop.layout.depth, x.shape[1], pop.layout.width))
             if training and pop.any_dropout else None)
    h = x
    for layer in range(pop.layout.depth):
        weight, bias = weights[layer * per_layer], weights[layer * per_layer + 1]
        if pop.any_bn:  # a Linear that batch norm follows has no bias (build_model)
            bias = bias * masks.biases[layer]
        z = baddbmm(bias, h, weight)
        if pop.any_bn:
            normed = _batch_norm(pop, z, layer, weights, training, rows)
            z = normed if pop.all_bn else torch.where(masks.batch_norm, normed, z)
        z = _activate(pop, z)
        if pop.padded[layer]:  # padded units: exactly 0 out, exactly 0 gradient
            z = z * masks.units[layer]
        if draws is not None:
            keep = 1.0 - pop.dropout
            z = z * (draws[:, layer] < keep) / keep
        if pop.passes[layer]:  # a shallower model keeps its last layer's output
            if h.shape[-1] < z.shape[-1]:
                h = nn.functional.pad(h, (0, z.shape[-1] - h.shape[-1]))
            z = torch.where(masks.deeper[layer], z, h)
        h = z
    return baddbmm(weights[-1], h, weights[-2])

def _activate(pop: Population, z: torch.Tensor) -> torch.Tensor:
    """Each model's own activation, one block of the model axis per activation."""
    if len(pop.blocks) == 1:
        return whole_vectors(pop.activations[pop.blocks[0][0]], z)
    blocks = z.split([count for _, count in pop.blocks])
    return torch.cat([whole_vectors(pop.activations[name], block)
                      for (name, _), block in zip(pop.blocks, blocks, strict=True)])

def _batch_norm(pop: Population, z: torch.Tensor, layer: int, weights: list[torch.Tensor],
                training: bool, rows: torch.Tensor | None) -> torch.Tensor:
    base = layer * pop.layout.per_layer
    weight, bias = weights[base + 2], weights[base + 3]
    mean_buf, var_buf = pop.buffers[2 * layer], pop.buffers[2 * layer + 1]
    if not training:
        mean, var = mean_buf, var_buf
    elif rows is None:
        mean = z.mean(dim=1, keepdim=True)  # (models, 1, width)
        # Not z.var: on these small tensors it cost as much as the rest of batch norm.
        centered = z - mean
        var = (centered**2).mean(dim=1, keepdim=True)
        n = z.shape[1]
        unbiased = var * (n / max(n - 1, 1))
    else:  # a padded batch: the statistics of each model's real rows
        count = rows.sum(dim=1, keepdim=True).to(z.dtype)  # (models, 1, 1)
        mean = (z * rows).sum(dim=1, keepdim=True) / count
        var = (((z - mean) * rows) ** 2).sum(dim=1, keepdim=True) / count
        unbiased = var * count / (count - 1).clamp(min=1)
    if training:
        with torch.no_grad():
            mean_buf.lerp_(mean, _BN_MOMENTUM)
            var_buf.lerp_(unbiased, _BN_MOMENTUM)
    if not training or rows is not None:
        centered = z - mean
    # The scale on (models, 1, width), not on every row: fewer ops on the big tensor.
    return centered * (torch.rsqrt(var + _BN_EPS) * weight) + bias


def _dropout_masks(pop: Population, shape: tuple[int, ...]) -> torch.Tensor:
    """Each model's uniform draws for one batch, every hidden layer at once, from its
    own generator: ``(models, depth, batch, width)``."""
    return torch.stack([torch.rand(shape, generator=pop.dropout_generators[m],
                                   device=pop.device, dtype=pop.flat.dtype)
                        for m in pop.alive])


def mse(out: torch.Tensor, y: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """Each model's mean squared error over its real ``rows`` (all without): ``(models,)``."""
    if rows is None:
        return ((out - y) ** 2).mean(dim=(1, 2))
    squares = torch.where(rows, (out - y) ** 2, 0.0)
    return squares.sum(dim=(1, 2)) / (rows.sum(dim=(1, 2)) * out.shape[2])
