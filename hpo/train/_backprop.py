"""One training step of a plain stacked network, its gradients written out without autograd.

A population of the course's tiny networks spends most of a step on per-op overhead, and a
third of it in the autograd engine: recording the forward graph, then walking it node by
node. For a plain stack of ``baddbmm`` layers and one activation (no batch norm, dropout,
or models of different depths) the backward pass is a handful of ``bmm`` calls, written out
here with torch's own backward kernels (``tanh_backward`` and the like), in the order
autograd runs them, so the gradients are autograd's (``tests/test_backprop.py`` compares
them). ``hpo.train.batched.Population`` takes this path where it applies, autograd
elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from hpo.train._kernels import baddbmm, bmm, whole_vectors

_aten = torch.ops.aten

Activation = Callable[[torch.Tensor], torch.Tensor]
Derivative = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

# name -> grad of the pre-activation z from (grad of the output, z, output): the kernel
# autograd's own backward of each `search_spaces.ACTIVATIONS` layer (default arguments) runs.
DERIVATIVES: dict[str, Derivative] = {
    "tanh": lambda grad, _z, out: _aten.tanh_backward(grad, out),
    "relu": lambda grad, _z, out: _aten.threshold_backward(grad, out, 0),
    "gelu": lambda grad, z, _out: _aten.gelu_backward(grad, z),
    "silu": lambda grad, z, _out: _aten.silu_backward(grad, z),
    "leaky_relu": lambda grad, z, _out: _aten.leaky_relu_backward(grad, z, 0.01, False),
    "elu": lambda grad, z, _out: _aten.elu_backward(grad, 1.0, 1, 1, False, z),
}


@torch.no_grad()
def mse_step(weights: Sequence[torch.Tensor], per_layer: int, depth: int,
             activation: Activation, derivative: Derivative, x: torch.Tensor, y: torch.Tensor,
             ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor | None]]:
    """Forward and backward of each model's mean squared error, ``(models,)``.

    ``weights`` are a population's, ``per_layer`` of them a hidden layer (weight and bias
    first), the output layer's weight and bias last; ``derivative`` is the activation's
    (`DERIVATIVES`); ``x`` is ``(models, batch, in)``.
    Returns the losses, the outputs ``(models, batch, out)`` and each weight's gradient of
    the summed losses (None for the ones no layer reads: batch norm's, where no model has
    it).
    """
    inputs, pre = [x], []
    h = x
    for layer in range(depth):
        z = baddbmm(weights[layer * per_layer + 1], h, weights[layer * per_layer])
        h = whole_vectors(activation, z)
        pre.append(z)
        inputs.append(h)
    out = baddbmm(weights[-1], h, weights[-2])
    diff = out - y
    loss = diff.pow(2).mean(dim=(1, 2))
    # What autograd runs for mean(pow(diff, 2)): 2 * diff times the mean's 1 / n, computed
    # in the tensors' dtype as there (not a Python float rounded twice).
    grad = (2 * diff) * diff.new_ones(()).div(diff[0].numel())
    grads: list[torch.Tensor | None] = [None] * len(weights)
    grads[-2] = bmm(h.transpose(1, 2), grad)
    grads[-1] = grad.sum(1, keepdim=True)
    weight = weights[-2]
    for layer in reversed(range(depth)):
        grad = whole_vectors(derivative, bmm(grad, weight.transpose(1, 2)), pre[layer],
                             inputs[layer + 1])
        weight = weights[layer * per_layer]
        grads[layer * per_layer] = bmm(inputs[layer].transpose(1, 2), grad)
        grads[layer * per_layer + 1] = grad.sum(1, keepdim=True)
    return loss, out, grads
