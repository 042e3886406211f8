"""The generator's losses computed in NumPy, and one training step's record of all of them.

The image, feature and adversarial losses of DeePSiM live in Caffe nets (``netspecs``) and are run by
``gan``; what is computed here is the colour-free image loss (its gradient is fed into G's net) and
the plain image loss for the log. Kept apart from the training stages so they can be tested alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class StepLosses:
    """One iteration's unweighted losses (NaN where a loss was not computed) and whether D stepped."""

    img: float
    feat: float
    adv: float
    d: float
    d_stepped: bool
    #: Norms of the weighted gradients each loss sends into G's image (lambda times dL/dimage).
    grad_img: float = float("nan")
    grad_feat: float = float("nan")
    grad_adv: float = float("nan")
    shape: float = float("nan")
    grad_shape: float = float("nan")



def shape_loss(fake: np.ndarray, real: np.ndarray) -> tuple[float, np.ndarray]:
    """The image loss up to colour: sum ||a G + b - x||^2 / 2B, with the best a, b per image and channel.

    Returns the loss and its gradient with respect to ``fake``: at the optimal (a, b) it is
    -a * residual / B (the fit's own dependence on G drops out).
    """
    g = fake.reshape(fake.shape[0], fake.shape[1], -1).astype(np.float64)
    x = real.reshape(g.shape).astype(np.float64)
    gc = g - g.mean(axis=2, keepdims=True)
    xc = x - x.mean(axis=2, keepdims=True)
    a = (gc * xc).sum(axis=2, keepdims=True) / np.maximum((gc * gc).sum(axis=2, keepdims=True), 1e-6)
    residual = xc - a * gc
    batch = len(fake)
    loss = float((residual**2).sum() / (2 * batch))
    return loss, (-a * residual / batch).reshape(fake.shape).astype(np.float32)


def image_loss(fake: np.ndarray, real: np.ndarray) -> float:
    """The plain image loss sum ||G(c) - x||^2 / 2B, in float64 (what G's EuclideanLoss reports, for the log)."""
    return float(np.sum((fake.astype(np.float64) - real) ** 2) / (2 * len(fake)))


def log_every(log: Callable[[str], None], steps: int, started: float) -> Callable[[int, StepLosses], None]:
    """A progress callback that logs the losses' means over each 100 steps (NaN ones left out)."""
    window: list[StepLosses] = []

    def progress(i: int, losses: StepLosses) -> None:
        window.append(losses)
        if (i + 1) % 100 == 0 or i + 1 == steps:
            mean = {k: float(np.nanmean([getattr(w, k) for w in window])) if any(
                not np.isnan(getattr(w, k)) for w in window) else float("nan")
                for k in ("img", "shape", "feat", "adv", "d", "grad_img", "grad_shape", "grad_feat", "grad_adv")}
            d = "" if np.isnan(mean["d"]) else (f" D {mean['d']:.3f} (paused {sum(not w.d_stepped for w in window)}"
                                                f"/{len(window)})")
            log(f"generator iter {i + 1}/{steps}: img {mean['img']:.0f} shape {mean['shape']:.0f} "
                f"feat {mean['feat']:.1f} adv {mean['adv']:.3f}{d}; |grad| img {mean['grad_img']:.0f} "
                f"shape {mean['grad_shape']:.0f} feat {mean['grad_feat']:.0f} adv {mean['grad_adv']:.0f} "
                f"({time.perf_counter() - started:.0f} s)")
            window.clear()

    return progress
