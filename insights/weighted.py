"""A sample held as values and how many times each occurs: what a merged KLL sketch holds (each retained item stands
for ``weight`` values), so a rank test and a median over a fleet's thousands of runs read its few hundred items
instead of the thousands of values they stand for. The numbers are those of the expanded sample
(``np.repeat(values, weights)``), exactly: tests check it.
"""
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass(frozen=True, eq=False)
class Weighted:
    values: np.ndarray  # float64
    weights: np.ndarray  # int64, each > 0
    n: int = field(init=False)  # the values it stands for

    def __post_init__(self):
        object.__setattr__(self, "n", int(self.weights.sum()))

    @classmethod
    def of(cls, sample) -> "Weighted":
        """``sample`` as is if weighted, else each of its values once."""
        if isinstance(sample, Weighted):
            return sample
        values = np.asarray(sample, dtype=float)
        return cls(values, np.ones(values.size, dtype=np.int64))

    @classmethod
    def joined(cls, samples: Iterable["Weighted"]) -> "Weighted":
        samples = list(samples)
        if not samples:
            return cls(np.empty(0), np.empty(0, dtype=np.int64))
        if len(samples) == 1:  # (read-only: the sample itself, most groups of the silent-fallback check)
            return samples[0]
        return cls(np.concatenate([s.values for s in samples]), np.concatenate([s.weights for s in samples]))

    def __len__(self) -> int:
        return self.n

    @property
    def unit(self) -> bool:
        """Every value once: a plain sample."""
        return bool((self.weights == 1).all())

    def present(self) -> "Weighted":
        """Without the missing values (NaN)."""
        keep = ~np.isnan(self.values)
        return self if keep.all() else Weighted(self.values[keep], self.weights[keep])

    def scaled(self, factor: float) -> "Weighted":
        return Weighted(self.values * factor, self.weights)

    def expanded(self) -> np.ndarray:
        return np.repeat(self.values, self.weights)

    def median(self) -> float:
        """``np.median`` of the expanded sample: its middle value, or the mean of the two middle ones."""
        return self._median

    @cached_property  # once per sample (it is read-only): the silent-fallback test asks a cpuOnly sample's median
    def _median(self) -> float:  # for every Neural Engine configuration it is compared with
        n = self.n
        if not n:
            return float("nan")
        low, high = self._smallest([(n - 1) // 2 + 1, n // 2 + 1])
        return float((low + high) / 2)

    def at_rank(self, p: float) -> float:
        """The expanded sample's ceil(p n)-th smallest value (the smallest for p <= 1/n, the largest for p >= 1)."""
        return float(self._smallest([min(max(math.ceil(p * self.n), 1), self.n)])[0])

    def _smallest(self, positions) -> np.ndarray:
        """The expanded sample's j-th smallest values (j from 1), without expanding it."""
        order = np.argsort(self.values, kind="stable")
        ends = np.cumsum(self.weights[order])
        return self.values[order[np.searchsorted(ends, positions, side="left")]]
