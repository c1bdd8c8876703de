"""Batches for the training loop: the lab's per-sample `Dataset`, and fast in-memory batches."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset

from hpo.data._base import RegressionData
from hpo.errors import ConfigError, DataError
from search_spaces.values import is_int


class RegressionDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """The lab's `Dataset`: item ``i`` is ``(x_i, y_i)`` with x shaped ``(features,)``.

    Built from a `RegressionData`, or from ``x`` and ``y`` arrays or tensors. Feed it to a
    ``DataLoader`` as the lab does; `InMemoryBatches` gives the same batches much faster.

    Example:
        >>> from torch.utils.data import DataLoader
        >>> from hpo.data import LabData
        >>> dataset = RegressionDataset(LabData().load())
        >>> loader = DataLoader(dataset, batch_size=64, shuffle=True)
        >>> x, y = dataset[0]
        >>> tuple(x.shape), tuple(y.shape)
        ((1,), (1,))
    """

    def __init__(
        self,
        x: RegressionData | torch.Tensor | np.ndarray,
        y: torch.Tensor | np.ndarray | None = None,
    ) -> None:
        self.x, self.y = _as_tensor_pair(x, y)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[index], self.y[index]


class InMemoryBatches:
    """Shuffled mini-batches sliced from tensors already in memory (or on the GPU).

    Iterating once is one epoch; each epoch draws a fresh permutation from a generator seeded
    with ``seed``, so two instances with the same seed yield the same batches, epoch by epoch.
    This means what ``DataLoader(dataset, batch_size, shuffle=True)`` means, without building
    each batch from single samples in Python. ``batch_size=None`` gives one full batch.

    Example:
        >>> from hpo.data import LabData, train_test_split
        >>> train, _ = train_test_split(LabData().load(), test_size=0.3, seed=0)
        >>> x, y = train.tensors()
        >>> batches = InMemoryBatches(x, y, batch_size=64, seed=0)
        >>> len(batches)  # 700 rows
        11
        >>> for xb, yb in batches:  # xb: (64, features), yb: (64, 1); the last batch is smaller
        ...     pass
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int | None = 64,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        if batch_size is not None and (
            not is_int(batch_size) or batch_size < 1
        ):
            raise ConfigError(
                f"`batch_size >= 1` must hold, but got {batch_size=!r}; "
                "pass a positive int, or None for one full batch."
            )
        self.x, self.y = _as_tensor_pair(x, y)
        self.batch_size = len(self.x) if batch_size is None else batch_size
        self.shuffle = shuffle
        self.seed = seed
        self._generator = torch.Generator().manual_seed(seed)

    @classmethod
    def from_data(
        cls,
        data: RegressionData,
        batch_size: int | None = 64,
        shuffle: bool = True,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> InMemoryBatches:
        """Batches of ``data``'s tensors, moved to ``device`` once, up front."""
        x, y = data.tensors(device)
        return cls(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed)

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y = self.x, self.y
        # One gather per epoch, then every batch is a view: no per-sample work.
        # A single full batch is not shuffled: the mean loss does not depend on row order.
        if self.shuffle and self.batch_size < len(x):
            order = torch.randperm(len(x), generator=self._generator).to(x.device)
            x, y = x[order], y[order]
        yield from zip(x.split(self.batch_size), y.split(self.batch_size), strict=True)

    def __repr__(self) -> str:
        return (
            f"InMemoryBatches(n={len(self.x)}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, seed={self.seed})"
        )


def _as_tensor_pair(
    x: RegressionData | torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray | None
) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(x, RegressionData):
        if y is not None:
            raise ConfigError("pass either a RegressionData or x and y, not both; drop `y`.")
        return x.tensors()
    if y is None:
        raise ConfigError("`y` is missing; pass x and y, or one RegressionData.")
    xt, yt = _as_tensor(x), _as_tensor(y)
    if xt.ndim == 0 or yt.ndim == 0 or len(xt) != len(yt) or len(xt) == 0:
        raise DataError(
            f"x and y must hold the same number (> 0) of rows, but got shapes "
            f"{tuple(xt.shape)} and {tuple(yt.shape)}; pass one target per row."
        )
    return xt, yt


def _as_tensor(values: torch.Tensor | np.ndarray) -> torch.Tensor:
    # NumPy arrays default to float64; models are float32, as RegressionData is.
    if isinstance(values, np.ndarray):
        return torch.as_tensor(values, dtype=torch.float32)
    return torch.as_tensor(values)
