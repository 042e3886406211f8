"""What to maximize: a value per sample read off one blob, and its gradient with respect to that blob.

The released code addressed a fully connected unit by its flat index in the blob (so for a batch of
one, ``flat[unit]``) and a convolutional unit as ``[:, unit, xy, xy]``, which reaches only diagonal
positions. ``Unit`` keeps both conventions and also takes a separate ``x``/``y``; with ``x == y == xy``
it is exactly the released objective.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Unit:
    """One neuron: ``unit`` is a channel (conv blobs) or an index into the per-sample vector (fc blobs)."""

    unit: int
    x: int = 0
    y: int = 0

    def index(self, sample: int, blob_ndim: int) -> tuple[int, ...]:
        """Where this unit lives in a blob (flat per-sample index for fc blobs)."""
        return (sample, self.unit, self.y, self.x) if blob_ndim == 4 else (sample, self.unit)


def _read(blob: np.ndarray, index: tuple[int, ...]) -> float:
    if blob.ndim == 4 or blob.ndim == 2:
        return float(blob[index])
    return float(blob[index[0]].flat[index[1]])


def _mark(diff: np.ndarray, index: tuple[int, ...], value: float) -> None:
    if diff.ndim == 4 or diff.ndim == 2:
        diff[index] += value
    else:
        diff[index[0]].flat[index[1]] += value


class Objective:
    """A per-sample value of one blob (``values``) and d(value)/d(blob) (``gradient``)."""

    def values(self, blob: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def gradient(self, blob: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class OneHotObjective(Objective):
    """Maximize one unit per sample of a batch: the gradient is a one-hot blob diff (FACTS §5 step 4)."""

    def __init__(self, units: Sequence[Unit]) -> None:
        if not units:
            raise ValueError("at least one unit")
        self.units = list(units)

    def values(self, blob: np.ndarray) -> np.ndarray:
        return np.array([_read(blob, u.index(b, blob.ndim)) for b, u in enumerate(self.units)], dtype=np.float64)

    def gradient(self, blob: np.ndarray) -> np.ndarray:
        diff = np.zeros(blob.shape, dtype=np.float32)
        for b, u in enumerate(self.units):
            _mark(diff, u.index(b, blob.ndim), 1.0)
        return diff


class PairObjective(Objective):
    """Two units at once (the paper's supplementary S8, Eq. 2): ``a1 + a2 - gamma * |a1 - a2|``.

    The penalty keeps either unit from winning alone; its (sub)gradient is ``1 -/+ gamma * sign(a1 - a2)``
    on the two units, evaluated at the current activations, so ``gradient`` needs the blob's values.
    """

    def __init__(self, first: Unit, second: Unit, gamma: float, batch: int = 1) -> None:
        self.first, self.second, self.gamma, self.batch = first, second, float(gamma), batch

    def pair(self, blob: np.ndarray, b: int) -> tuple[float, float]:
        return _read(blob, self.first.index(b, blob.ndim)), _read(blob, self.second.index(b, blob.ndim))

    def values(self, blob: np.ndarray) -> np.ndarray:
        out = np.empty(self.batch, dtype=np.float64)
        for b in range(self.batch):
            a1, a2 = self.pair(blob, b)
            out[b] = a1 + a2 - self.gamma * abs(a1 - a2)
        return out

    def gradient(self, blob: np.ndarray) -> np.ndarray:
        diff = np.zeros(blob.shape, dtype=np.float32)
        for b in range(self.batch):
            a1, a2 = self.pair(blob, b)
            s = float(np.sign(a1 - a2))
            _mark(diff, self.first.index(b, blob.ndim), 1.0 - self.gamma * s)
            _mark(diff, self.second.index(b, blob.ndim), 1.0 + self.gamma * s)
        return diff


class PerSample(Objective):
    """A batch of runs, each with its own objective: sample ``b`` is scored by ``objectives[b]`` alone.

    Each objective sees its sample as a batch of one, so a run computes exactly what it would alone.
    """

    def __init__(self, objectives: Sequence[Objective]) -> None:
        if not objectives:
            raise ValueError("at least one objective")
        self.objectives = list(objectives)

    def values(self, blob: np.ndarray) -> np.ndarray:
        return np.concatenate([o.values(blob[b : b + 1]) for b, o in enumerate(self.objectives)])

    def gradient(self, blob: np.ndarray) -> np.ndarray:
        return np.concatenate([o.gradient(blob[b : b + 1]) for b, o in enumerate(self.objectives)])
