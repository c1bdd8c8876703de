"""Torch optimizers that never step, built without importing ``torch._dynamo``.

torch wraps ``Optimizer.add_param_group`` in ``torch._disable_dynamo``, which imports
``torch._dynamo`` the first time it is called: 1.5-4 s of CPU, with the load, in every
process that builds a torch optimizer (measured on a 2-core machine). hpo compiles nothing,
and two of the optimizers it builds never step: the stand-ins that carry a population's
learning-rate schedules (``hpo.train.schedules``) and the one the preflight builds to check
a study's params (``hpo.runners.preflight``). Built as below, a run whose trials all train in
populations never imports ``torch._dynamo``. An optimizer that steps still does (torch's
``step`` imports it directly), so a trial trained one at a time pays it, as before.

Both ways call torch's own ``add_param_group``, only without the wrapper that would keep
``torch.compile`` from tracing into it; neither object is ever compiled. They rely on two
details of torch's ``_disable_dynamo`` (torch/_compile.py): the wrapper keeps the plain
function as ``__wrapped__`` (functools.wraps), and caches its disabled version on that
function as ``__dynamo_disable``. tests/test_no_dynamo.py names both and fails loudly when a
torch release changes them.

Example:
    >>> import torch
    >>> StandInSGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1).param_groups[0]["lr"]
    0.1
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import torch

# torch's add_param_group without the torch._disable_dynamo wrapper (None if torch changed).
PLAIN_ADD_PARAM_GROUP: Any = getattr(torch.optim.Optimizer.add_param_group, "__wrapped__", None)
DYNAMO_CACHE_ATTRIBUTE = "__dynamo_disable"  # where the wrapper caches dynamo's version


class StandInSGD(torch.optim.SGD):
    """``torch.optim.SGD`` whose ``add_param_group`` is torch's, unwrapped: building one
    imports nothing. For optimizers that only carry an lr for a scheduler."""

    if PLAIN_ADD_PARAM_GROUP is not None:
        add_param_group = PLAIN_ADD_PARAM_GROUP


@contextlib.contextmanager
def optimizers_built_without_dynamo() -> Iterator[None]:
    """Optimizers built inside (by code that picks the class itself) skip the import.

    For the moment of the block, the wrapper's cache holds the plain function, so it calls
    that instead of importing ``torch._dynamo``; afterwards the cache is emptied again and
    the next optimizer built anywhere gets torch's behaviour. Nothing is changed once
    ``torch._dynamo`` is imported anyway.
    """
    plain = PLAIN_ADD_PARAM_GROUP
    if plain is None or "torch._dynamo" in sys.modules or hasattr(plain, DYNAMO_CACHE_ATTRIBUTE):
        yield
        return
    setattr(plain, DYNAMO_CACHE_ATTRIBUTE, plain)
    try:
        yield
    finally:
        if getattr(plain, DYNAMO_CACHE_ATTRIBUTE, None) is plain:
            delattr(plain, DYNAMO_CACHE_ATTRIBUTE)
