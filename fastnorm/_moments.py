"""`Moments`, the mergeable (count, mean, M2) every fit is built from, and
the moments of a chunk of columns. Below both `fastnorm.stats` (which
exports it) and `fastnorm._dask` (which merges chunks' moments with it).
"""
from dataclasses import dataclass

import numpy as np

from . import _backend


@dataclass(frozen=True)
class Moments:
    """Count, mean and M2 (sum of squared deviations from the mean), float64.

    With sample weights, `count` is the sum of the weights. A slot that saw
    no value has count 0, mean NaN and m2 0; it is the identity of `merge`.
    """

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray

    def __post_init__(self):
        # fields given as lists or scalars become float64 arrays of one
        # shape (a scalar count, as scikit-learn's n_samples_seen_, broadcasts)
        names = ("count", "mean", "m2")
        xp = _backend.namespace(self.mean)  # CuPy statistics stay on their device
        arrays = []
        for name in names:
            value = getattr(self, name)
            try:
                arrays.append(xp.asarray(value, dtype=np.float64))
            except (TypeError, ValueError):
                raise TypeError(f"Moments.{name} must be numbers, got "
                                f"{type(value).__name__}") from None
        shapes = [a.shape for a in arrays]
        if len(set(shapes)) > 1:
            try:
                shape = np.broadcast_shapes(*shapes)
            except ValueError:
                raise ValueError("Moments' count, mean and m2 must have one shape, got "
                                 + ", ".join(map(str, shapes))) from None
            arrays = [xp.broadcast_to(a, shape).copy() for a in arrays]
        for name, arr in zip(names, arrays):
            object.__setattr__(self, name, arr)

    def var(self, ddof=0):
        """Variance with `ddof` delta degrees of freedom (NaN where count <= ddof)."""
        denom = self.count - ddof
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(denom > 0, self.m2 / np.where(denom > 0, denom, 1), np.nan)

    def std(self, ddof=0):
        return np.sqrt(self.var(ddof))

    def merge(self, other):
        """Moments of the union of both samples (Chan et al.'s parallel formula).

        Exact to rounding: merging the moments of two halves gives the
        moments of the whole.
        """
        if not isinstance(other, Moments):
            raise TypeError(f"other must be Moments, got {type(other).__name__}")
        if np.shape(other.count) != np.shape(self.count):
            raise ValueError(f"other has shape {np.shape(other.count)}, "
                             f"expected {np.shape(self.count)}")
        n_a, n_b = self.count, other.count
        n = n_a + n_b
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = other.mean - self.mean
            frac_b = n_b / n
            mean = self.mean + delta * frac_b
            m2 = self.m2 + other.m2 + delta * delta * (n_a * frac_b)
        # an empty side is the identity (its NaN mean must not leak in)
        mean = np.where(n_b == 0, self.mean, np.where(n_a == 0, other.mean, mean))
        m2 = np.where(n_b == 0, self.m2, np.where(n_a == 0, other.m2, m2))
        return Moments(n, mean, m2)


def column_moments(X, ignore_nan):
    """Moments of each column of a 2-D float32/float64 array (no checks)."""
    count, mean, m2 = _backend.ops_for(X).moments(X, 0, None, ignore_nan)
    mean[count == 0] = np.nan
    return Moments(count, mean, m2)


Moments.__module__ = "fastnorm.stats"  # where users import it from (and pickles find it)
