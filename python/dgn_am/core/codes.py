"""The code space: the released random start codes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def random_code(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """The released start code: ``np.random.seed(seed)`` then ``normal(0, 1, shape)``, float64.

    The legacy global generator is used on purpose: it is what makes seed 0 give the released code.
    """
    np.random.seed(seed)
    return np.random.normal(0, 1, shape)


def random_codes(seeds: Sequence[int], size: int) -> np.ndarray:
    """One released start code per seed, stacked into a batch (B x size, float64)."""
    return np.concatenate([random_code(s, (1, size)) for s in seeds], axis=0)
