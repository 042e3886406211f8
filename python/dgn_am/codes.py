"""The code space: random start codes and per-unit upper bounds read from act_range files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import InputError, read_input


def random_code(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """The released start code: ``np.random.seed(seed)`` then ``normal(0, 1, shape)``, float64.

    The legacy global generator is used on purpose: it is what makes seed 0 give the released code.
    """
    np.random.seed(seed)
    return np.random.normal(0, 1, shape)


def random_codes(seeds: Sequence[int], size: int) -> np.ndarray:
    """One released start code per seed, stacked into a batch (B x size, float64)."""
    return np.concatenate([random_code(s, (1, size)) for s in seeds], axis=0)


def read_bounds(path: Path, n_units: int) -> np.ndarray:
    """Per-unit upper bounds (float64, length ``n_units``) from an act_range file.

    The released files hold one line of space-separated numbers, one per code unit. Anything else
    (a missing file, a wrong count, a non-number, a negative or non-finite bound) is an InputError.
    """
    fields = str(read_input(path, "bound file")).split()
    try:
        values = np.array([float(f) for f in fields], dtype=np.float64)
    except ValueError:
        bad = next(f for f in fields if not _is_number(f))
        raise InputError(f"bound file {path} holds a non-number: {bad[:20]!r}") from None
    if values.size != n_units:
        raise InputError(f"bound file {path} has {values.size} values; the code has {n_units} units")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise InputError(f"bound file {path} holds negative or non-finite bounds")
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
