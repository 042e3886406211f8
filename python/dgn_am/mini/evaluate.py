"""How well the miniature DGN-AM did, in plain NumPy: the judge's agreement and activations against real images.

Two questions about the images synthesized for E's classes: does an independently trained classifier
see the target class in them (``share_recognized``), and how strongly does each drive its unit compared
with real images of that class (``real_medians``, ``class_rows``)?
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The share of synthesized images the independent classifier must label as their target class.
SHARE_THRESHOLD = 0.8


@dataclass(frozen=True)
class ClassRow:
    """One class of the evaluation table."""

    unit: int
    label: str
    synthetic: float  # E's target activation for the synthesized image
    real_median: float  # median of the same unit over real held-out images of that class
    predicted: str  # the independent classifier's label for the synthesized image
    probability: float  # ... and its probability for the target class

    @property
    def ratio(self) -> float:
        """Synthetic over real median activation (inf/nan when the median is not positive)."""
        return self.synthetic / self.real_median if self.real_median > 0 else float("nan")

    @property
    def recognized(self) -> bool:
        return self.predicted == self.label


def share_recognized(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """The share of rows of ``probabilities`` (N x classes) whose arg-max is the row's target class."""
    probabilities = np.asarray(probabilities).reshape(len(targets), -1)
    if not len(targets):
        raise ValueError("no images to evaluate")
    return float(np.mean(probabilities.argmax(axis=1) == np.asarray(targets)))


def real_medians(activations: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Per class k: the median over real images of class k of unit k's activation (``activations``: N x C)."""
    activations = np.asarray(activations).reshape(len(labels), -1)
    out = np.full(n_classes, np.nan)
    for k in range(n_classes):
        mask = np.asarray(labels) == k
        if mask.any():  # a class with no real image keeps NaN
            out[k] = float(np.median(activations[mask, k]))
    return out


def class_rows(units: list[int], names: list[str], synthetic: np.ndarray, medians: np.ndarray,
               probabilities: np.ndarray) -> list[ClassRow]:
    """The table: one row per synthesized unit (``synthetic[i]`` is unit ``units[i]``'s activation)."""
    probabilities = np.asarray(probabilities).reshape(len(units), -1)
    return [ClassRow(unit, names[unit], float(synthetic[i]), float(medians[unit]),
                     names[int(probabilities[i].argmax())], float(probabilities[i, unit]))
            for i, unit in enumerate(units)]


def median_ratio(rows: list[ClassRow]) -> float:
    """The median over classes of synthetic / real-median activation."""
    return float(np.nanmedian([r.ratio for r in rows]))
