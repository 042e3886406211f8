"""DGN-AM: find a generator code whose image maximally activates a unit of a target net.

Each iteration, as the released act_max.py ran it (FACTS §5):

1. ``lr = lr0 + (lr_end - lr0) * i / n``
2. x0 = G(code); crop its centre to the target net's input size.
3. Forward the crop through the target net; backprop a one-hot objective to the image: g.
4. Image step, float32, in place: ``x = crop; x += lr / mean(|g|) * g``.
5. Paste x back into x0; backprop ``x_pasted - x0`` through G to the code: gc.
   Code step, float32, in place: ``code += lr / mean(|gc|) * gc``.
6. Clip to [-1, 1] (``clip``) or else to [0, bound] per unit; then ``code *= L2`` if 0 < L2 < 1.
7. A zero gradient norm ends the run after this iteration (the released behaviour).
   A NaN or Inf anywhere (the activation, a gradient, the code) ends it at once as failed: the released
   code skipped such steps, which left the code unchanged for good, so it could only repeat the same
   NaN until the last iteration; stopping says so instead of returning a NaN result.

The saved result is the last iteration's crop of x0 (generated from the code before that
iteration's update); the released debug frames were each iteration's x after the image step instead.
Both nets stay fixed; only the code moves. Every normalization is per sample, so a batch of codes
(several units or seeds) runs as independent copies of the released loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .objectives import Objective
from .pixels import center_crop, paste_center


class Generator(Protocol):
    """G: codes (B x C) to images (B x 3 x H x W); and the gradient back to the codes."""

    def generate(self, code: np.ndarray) -> np.ndarray: ...

    def code_gradient(self, image_diff: np.ndarray) -> np.ndarray: ...


class Target(Protocol):
    """The net being visualized: activations of the objective and their gradient w.r.t. the image."""

    input_size: tuple[int, int]

    def activation_gradient(
        self, image: np.ndarray, objective: Objective
    ) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class Settings:
    """The act_max.py hyperparameters. ``upper_bound`` (float64) enables per-unit clipping.

    A batch of runs shares the iteration count and the learning-rate schedule (every sample takes its
    step at the same ``lr``); its decay and bounds may differ per sample: ``L2`` one value or one per
    sample, ``upper_bound`` length C or B x C.
    """

    n_iters: int
    start_lr: float
    end_lr: float
    L2: float | np.ndarray = 1.0
    clip: bool = False
    upper_bound: np.ndarray | None = None


@dataclass
class Iteration:
    """What the progress callback sees after each iteration."""

    index: int
    n_iters: int
    lr: float
    activations: np.ndarray
    image: np.ndarray  # the crop fed to the target net this iteration (B x 3 x h x w, BGR)
    # the crop after this iteration's image step: what act_max.py wrote as its per-iteration debug frame
    stepped: np.ndarray


@dataclass(frozen=True)
class Stop:
    """Why a sample's run ended before ``n_iters``: at ``iteration`` (from 0), for ``reason``.

    ``failed``: a NaN or Inf appeared, so the sample has no usable result.
    """

    iteration: int
    reason: str
    failed: bool = False


@dataclass
class Result:
    code: np.ndarray  # final code, float32, B x C
    image: np.ndarray  # last iteration's crop, float32, B x 3 x h x w, BGR
    # B x iterations run, float64: the unit's value each iteration (the released code printed 0 instead
    # on an iteration whose gradient was NaN or zero; the true value is more useful and changes nothing else)
    activations: np.ndarray
    iterations: int
    stops: list[Stop | None] = field(default_factory=list)  # per sample: None if it ran every iteration

    @property
    def stopped(self) -> list[bool]:
        return [s is not None for s in self.stops]


def learning_rate(i: int, n: int, lr0: float, lr_end: float) -> float:
    """Linear schedule from lr0 (i = 0) towards lr_end (never reached: i stops at n - 1)."""
    return lr0 + ((lr_end - lr0) * i) / n


def normalized_step(x: np.ndarray, g: np.ndarray, lr: float, active: np.ndarray) -> np.ndarray:
    """``x += lr / mean(|g|) * g`` per sample, in place; returns each sample's gradient L2 norm.

    Samples whose norm is NaN or zero, or that are not ``active``, are left unchanged. The factor is
    formed in float64 from the float32 mean and then applied in float32, as NumPy 1.x did for the
    released ``step_size / np.abs(g).mean() * g``.
    """
    norms = np.empty(len(x), dtype=np.float64)
    for b in range(len(x)):
        norms[b] = float(np.linalg.norm(g[b]))
        if not active[b] or np.isnan(norms[b]) or norms[b] == 0:
            continue
        mean_abs = np.abs(g[b]).mean()  # float32, as NumPy computes it
        x[b] += np.float32(lr / np.float64(mean_abs)) * g[b]
    return norms


def constrain(code: np.ndarray, settings: Settings) -> np.ndarray:
    """Clip (or bound) then decay the code; returns the new float32 code.

    dtypes follow the released code: the per-unit bounds are float64 arrays, so bounding and the L2
    decay after it run in float64; ``--clip`` and the plain L2 decay keep the float32 code float32.
    """
    if settings.clip:
        out = np.clip(code, -1, 1)
    elif settings.upper_bound is not None:
        upper = np.asarray(settings.upper_bound, dtype=np.float64)
        upper = upper.reshape(1, -1) if upper.ndim == 1 else upper
        out = np.minimum(np.maximum(code, np.zeros(upper.shape)), upper)
    else:
        out = code.copy()
    decay = np.asarray(settings.L2, dtype=np.float64)
    if decay.ndim == 0:
        if 0 < decay < 1:
            out *= float(decay)
    else:
        # Per sample, with the scalar's arithmetic: a Python float meets a float32 code as float32
        # (rounded to float32 first) and a float64 (bounded) code as float64; 1.0 leaves a row unchanged.
        factor = np.where((decay > 0) & (decay < 1), decay, 1.0).astype(out.dtype)
        out *= factor.reshape(-1, 1)
    return out.astype(np.float32)


@np.errstate(over="ignore", invalid="ignore")  # an overflow or NaN is caught below as a failed run, not warned
def optimize(
    generator: Generator,
    target: Target,
    objective: Objective,
    start_code: np.ndarray,
    settings: Settings,
    progress: Callable[[Iteration], None] | None = None,
) -> Result:
    """Run DGN-AM from ``start_code`` (B x C; float64 start codes are stored as float32, as Caffe did)."""
    if settings.n_iters < 1:
        raise ValueError("n_iters must be at least 1")
    code = np.asarray(start_code).astype(np.float32)
    batch = len(code)
    active = np.ones(batch, dtype=bool)
    stops: list[Stop | None] = [None] * batch

    def fail(b: int, i: int, reason: str) -> None:
        if active[b]:
            active[b] = False
            stops[b] = Stop(i, reason, failed=True)

    if not np.isfinite(code).all():
        raise ValueError("the start code holds NaN or Inf")
    acts: list[np.ndarray] = []
    saved = None
    n = settings.n_iters
    for i in range(n):
        lr = learning_rate(i, n, settings.start_lr, settings.end_lr)
        x0 = generator.generate(code)
        crop = center_crop(x0, target.input_size)
        saved = np.where(active[:, None, None, None], crop, saved) if saved is not None else crop.copy()

        a, g = target.activation_gradient(crop, objective)
        acts.append(a)
        for b in np.flatnonzero(~np.isfinite(a)):
            fail(b, i, f"the activation became {a[b]}")
        x = crop.copy()
        norm_net = normalized_step(x, g, lr, active)
        for b in np.flatnonzero(np.isnan(norm_net)):  # an Inf norm of a finite float32 gradient is no failure
            fail(b, i, "the image gradient holds NaN")
        for b in np.flatnonzero(~np.isfinite(x).reshape(batch, -1).all(axis=1)):
            fail(b, i, "the image step overflowed to Inf or NaN (lower the learning rate)")

        gc = generator.code_gradient(paste_center(x0, x) - x0)
        stepped = code.copy()
        norm_gen = normalized_step(stepped, gc, lr, active)
        for b in np.flatnonzero(np.isnan(norm_gen)):
            fail(b, i, "the code gradient holds NaN")

        new_code = constrain(stepped, settings)
        for b in np.flatnonzero(~np.isfinite(new_code).all(axis=1)):
            fail(b, i, "the code overflowed to Inf or NaN (lower the learning rate or bound the code)")
        code = np.where(active[:, None], new_code, code)

        if progress is not None:
            progress(Iteration(i, n, lr, a, crop, x))

        for b in range(batch):
            if active[b] and (norm_net[b] == 0 or norm_gen[b] == 0):
                active[b] = False
                stops[b] = Stop(i, "the image gradient is zero" if norm_net[b] == 0 else "the code gradient is zero")
        if not active.any():
            break

    return Result(
        code=code,
        image=saved.astype(np.float32),
        activations=np.stack(acts, axis=1),
        iterations=len(acts),
        stops=stops,
    )
