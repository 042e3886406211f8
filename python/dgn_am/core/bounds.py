"""Bound statistics: per-unit mean + k std of a code layer over real images, and the act_range format.

DGN-AM clips every code unit to [0, bound]. Statistics are per element of the flattened blob,
population std (ddof 0), accumulated batch by batch in float64 (Chan et al.'s pairwise update), so a
large image folder never has to fit in memory. ``format_bounds`` and ``parse_bounds`` are the two
directions of the released files' one line of numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..common.errors import InputError


class RunningStats:
    """Per-element count, mean and sum of squared deviations, updated one batch (N x ...) at a time."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def add(self, batch: np.ndarray) -> None:
        x = np.asarray(batch, dtype=np.float64)
        if not len(x):
            return
        x = x.reshape(len(x), -1)
        n_b, mean_b = len(x), x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        if self.mean is None:
            self.count, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        if mean_b.shape != self.mean.shape:
            raise ValueError(f"batch has {mean_b.size} units, earlier batches {self.mean.size}")
        n = self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta**2 * (self.count * n_b / n)
        self.count = n

    @property
    def std(self) -> np.ndarray:
        if self.m2 is None:
            raise ValueError("no activations were added")
        return np.sqrt(self.m2 / self.count)


def bounds(stats: RunningStats, k: float) -> np.ndarray:
    """Per-unit ``mean + k * std``, at least 0."""
    if stats.mean is None:
        raise ValueError("no activations were added")
    return np.maximum(stats.mean + k * stats.std, 0.0)


def format_bounds(values: np.ndarray, decimals: int = 0) -> str:
    """One line of space-separated numbers, as the released files: integers when ``decimals`` is 0."""
    rounded = np.round(np.asarray(values, dtype=np.float64), decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    if decimals == 0:
        return " ".join(str(int(v)) for v in rounded) + "\n"
    return " ".join(f"{v:.{decimals}f}" for v in rounded) + "\n"


def parse_bounds(text: str, n_units: int, path: Path | str = "bound file",
                 code_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Per-unit upper bounds (float64, length ``n_units``) from the text of an act_range file at ``path``.

    The released files hold one line of space-separated numbers, one per code unit, except
    ``3x/conv1.txt``, ``conv2.txt`` and ``conv4.txt``, which hold one per channel (96, 256, 384): for a
    spatial code (``code_shape`` N x C x H x W) a file of C values bounds every position of its channel
    alike (the flattened code is channel-major). Anything else (a wrong count, a non-number, a negative or
    non-finite bound) is an InputError naming ``path``.
    """
    fields = text.split()
    try:
        values = np.array([float(f) for f in fields], dtype=np.float64)
    except ValueError:
        bad = next(f for f in fields if not _is_number(f))
        raise InputError(f"bound file {path} holds a non-number: {bad[:20]!r}") from None
    spatial = code_shape is not None and len(code_shape) == 4 and code_shape[2] * code_shape[3] > 1
    if spatial and values.size == code_shape[1] and values.size != n_units:
        values = np.repeat(values, code_shape[2] * code_shape[3])  # one value per channel, over its positions
    if values.size != n_units:
        per_channel = f" or one per channel ({code_shape[1]})" if spatial else ""
        raise InputError(f"bound file {path} has {values.size} values; the code has {n_units} units{per_channel}")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise InputError(f"bound file {path} holds negative or non-finite bounds")
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
