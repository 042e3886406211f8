"""Which unit to drive: a one-hot gradient on a blob, and the matching activation read-out.

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


class OneHotObjective:
    """Maximize one unit per sample of a batch; the gradient of the objective is a one-hot blob diff."""

    def __init__(self, units: Sequence[Unit]) -> None:
        if not units:
            raise ValueError("at least one unit")
        self.units = list(units)

    def gradient(self, blob_shape: tuple[int, ...]) -> np.ndarray:
        """The top diff that, backpropagated, gives d(activation)/d(input) for each sample."""
        diff = np.zeros(blob_shape, dtype=np.float32)
        for b, u in enumerate(self.units):
            if len(blob_shape) == 4:
                diff[b, u.unit, u.y, u.x] = 1.0
            else:
                diff[b].flat[u.unit] = 1.0
        return diff

    def activations(self, blob_data: np.ndarray) -> np.ndarray:
        """The driven unit's value for each sample, as float64 for the record."""
        out = np.empty(len(self.units), dtype=np.float64)
        for b, u in enumerate(self.units):
            if blob_data.ndim == 4:
                out[b] = blob_data[b, u.unit, u.y, u.x]
            else:
                out[b] = blob_data[b].flat[u.unit]
        return out
