"""The kernels a population runs, the same for a model whatever its company: a model
trained alone repeats, to the bit, what it did in a population (`hpo.results.retrain`).

Matrix products: torch computes a batch of one matrix product with another kernel than a
batch of two or more (``bmm`` falls back to ``mm``/``addmm``), whose float32 rounding
differs in the last bits for the lab's shapes (a 300 × 20 by 20 × 1 product, measured:
1.4e-6 apart). Over 50 epochs that moved a trial's R² by up to 5e-3, so a model trained
alone did not repeat what it did in a population. A batch of one is therefore computed as
two (the model twice, one result kept): every population, of any size, runs the same
kernels.

Element-wise functions: torch's CPU loops run 2 × 8 (AVX2) or 2 × 16 (AVX-512) floats at a
time, and the elements left over by a scalar loop, whose transcendental functions (tanh,
exp, erf) round otherwise than the vectorized ones. Which elements are left over depends on
the whole tensor, so on the other models; `whole_vectors` pads a tensor so none is.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def baddbmm(bias: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``torch.baddbmm(bias, x, weight)``, computed as a batch of two or more."""
    if x.shape[0] == 1:
        return torch.baddbmm(_twice(bias), _twice(x), _twice(weight))[:1]
    return torch.baddbmm(bias, x, weight)


def bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``torch.bmm(a, b)``, computed as a batch of two or more."""
    if a.shape[0] == 1:
        return torch.bmm(_twice(a), _twice(b))[:1]
    return torch.bmm(a, b)


def _twice(t: torch.Tensor) -> torch.Tensor:
    return t.repeat(2, *(1,) * (t.dim() - 1))  # a copy: a stride-0 batch takes other kernels


# Elements per padded tensor: two AVX-512 vectors of floats (of doubles: four), per thread,
# as torch splits a large tensor between threads at a multiple of its share.
_WHOLE = 64


def whole_vectors(fn: Callable[..., torch.Tensor], *tensors: torch.Tensor) -> torch.Tensor:
    """``fn(*tensors)`` of element-wise ``fn`` on same-shaped tensors, every element computed
    by torch's vectorized loop (tensors padded with zeros to whole vectors, then cut back)."""
    count = tensors[0].numel()
    extra = -count % (_WHOLE * torch.get_num_threads())
    if not extra:
        return fn(*tensors)
    padded = [torch.nn.functional.pad(t.reshape(-1), (0, extra)) for t in tensors]
    return fn(*padded)[:count].view(tensors[0].shape)
