"""The lab's 1-D regression data: an undulating truth with noise that grows along x."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpo.data._base import RegressionData
from hpo.errors import ConfigError
from search_spaces.values import is_int

# x stays on a unit-scaled interval so the lab's networks need no standardization.
X_LOW, X_HIGH = -2.0, 2.0
# The truth: a trend plus about two periods of a sine over the interval. A straight line can
# follow the trend only (test R² near 0.25); a 1→20→20→1 tanh MLP follows the undulations too.
SLOPE, FREQUENCY = 0.5, 2.5
# The noise standard deviation grows linearly from NOISE_LOW at X_LOW to NOISE_HIGH at X_HIGH,
# small enough that a good fit reaches test R² in the high 0.9s, as the lecture saw.
NOISE_LOW, NOISE_HIGH = 0.02, 0.17


def lab_truth(x: np.ndarray) -> np.ndarray:
    """The noise-free curve the lab data scatters around: ``0.5 x + sin(2.5 x)``."""
    return SLOPE * x + np.sin(FREQUENCY * x)


def lab_noise_scale(x: np.ndarray) -> np.ndarray:
    """The standard deviation of the noise at ``x``, from 0.02 at x = -2 to 0.17 at x = 2."""
    fraction = (x - X_LOW) / (X_HIGH - X_LOW)
    return NOISE_LOW + (NOISE_HIGH - NOISE_LOW) * fraction


@dataclass(frozen=True)
class LabData:
    """The lab's 1-D regression data set, the same points for the same ``seed``.

    ``x`` is drawn uniformly on [-2, 2] (and sorted, for plotting);
    ``y = 0.5 x + sin(2.5 x) + noise`` with the noise's standard deviation growing linearly
    from 0.02 at x = -2 to 0.17 at x = 2.

    Example:
        >>> data = LabData(n=1000, seed=0).load()
        >>> data.x.shape, data.feature_names
        ((1000, 1), ('x',))
    """

    n: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if not is_int(self.n) or self.n < 4:
            raise ConfigError(
                f"`n >= 4` must hold for LabData, but got n={self.n!r}; ask for more points."
            )
        if not is_int(self.seed):
            raise ConfigError(f"`seed` must be an int, but got seed={self.seed!r}.")

    def load(self) -> RegressionData:
        """Generate the points (deterministic for the seed)."""
        rng = np.random.default_rng(self.seed)
        x = np.sort(rng.uniform(X_LOW, X_HIGH, size=self.n))
        y = lab_truth(x) + rng.normal(0.0, 1.0, size=self.n) * lab_noise_scale(x)
        return RegressionData(x, y, ("x",), "y")

    def describe(self) -> str:
        """E.g. ``"lab 1-D regression (n=1000, seed=0)"``."""
        return f"lab 1-D regression (n={self.n}, seed={self.seed})"
