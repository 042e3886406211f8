"""Act-range files (the released ``act_range/{1x,2x,3x}/*.txt``, or ``dgn-am act-range``'s): reading one."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..common.errors import read_input
from ..core.bounds import parse_bounds


def read_bounds(path: Path, n_units: int, code_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Per-unit upper bounds (float64, length ``n_units``) from the act_range file at ``path``.

    A per-channel file (one value per channel of a spatial ``code_shape``) is broadcast over the positions.
    A missing or unreadable file, a wrong count, a non-number, a negative or non-finite bound: an
    InputError naming the file.
    """
    return parse_bounds(str(read_input(path, "bound file")), n_units, path, code_shape)
