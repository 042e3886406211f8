"""The loop's arithmetic on small NumPy nets: schedule, steps, constraints, NaN/zero handling, batches."""

from __future__ import annotations

import numpy as np
import pytest

from dgn_am.assets.actrange import read_bounds
from dgn_am.common.errors import InputError
from dgn_am.core.algorithm import Settings, constrain, learning_rate, normalized_step, optimize
from dgn_am.core.codes import random_code, random_codes
from dgn_am.core.objectives import OneHotObjective, Unit
from dgn_am.core.pixels import center_crop, crop_offset, paste_center, to_display


class LinearGenerator:
    """G(code) = reshape(W code): 4 -> 1 x 3 x 8 x 8, so the crop and paste arithmetic is exercised."""

    def __init__(self, seed: int = 0, size: int = 8, code: int = 4) -> None:
        rng = np.random.default_rng(seed)
        self.W = rng.standard_normal((3 * size * size, code)).astype(np.float32)
        self.size = size
        self.calls: list[np.ndarray] = []

    def generate(self, code: np.ndarray) -> np.ndarray:
        self.calls.append(code.copy())
        return (code.astype(np.float32) @ self.W.T).reshape(len(code), 3, self.size, self.size)

    def code_gradient(self, image_diff: np.ndarray) -> np.ndarray:
        return image_diff.reshape(len(image_diff), -1) @ self.W


class LinearTarget:
    """Units are fixed linear read-outs of the 6x6 crop, one per channel of a 'conv' blob of 2 x 2 x 2."""

    input_size = (6, 6)

    def __init__(self, seed: int = 1, grad_override: np.ndarray | None = None) -> None:
        rng = np.random.default_rng(seed)
        self.V = rng.standard_normal((8, 3 * 6 * 6)).astype(np.float32)
        self.grad_override = grad_override
        self.seen: list[np.ndarray] = []

    def activation_gradient(self, image, objective):
        self.seen.append(image.copy())
        blob = (image.reshape(len(image), -1) @ self.V.T).reshape(len(image), 2, 2, 2)
        acts = objective.values(blob)
        top = objective.gradient(blob).reshape(len(image), -1)
        grad = (top @ self.V).reshape(image.shape).astype(np.float32)
        if self.grad_override is not None:
            grad = np.broadcast_to(self.grad_override, grad.shape).astype(np.float32).copy()
        return acts, grad


def test_learning_rate_schedule_is_linear_and_never_reaches_end():
    lrs = [learning_rate(i, 4, 8.0, 0.0) for i in range(4)]
    assert lrs == [8.0, 6.0, 4.0, 2.0]
    assert learning_rate(199, 200, 8.0, 1e-10) == pytest.approx(8.0 + (1e-10 - 8.0) * 199 / 200)


def test_optimize_uses_the_schedule():
    seen = []
    optimize(LinearGenerator(), LinearTarget(), OneHotObjective([Unit(1)]), np.ones((1, 4)),
             Settings(n_iters=5, start_lr=1.0, end_lr=0.5), progress=lambda it: seen.append(it.lr))
    assert seen == [1.0 + (0.5 - 1.0) * i / 5 for i in range(5)]


def test_crop_offsets_and_paste():
    assert crop_offset(256, 227) == 14
    assert crop_offset(8, 6) == 1
    x = np.arange(2 * 3 * 8 * 8, dtype=np.float32).reshape(2, 3, 8, 8)
    c = center_crop(x, (6, 6))
    np.testing.assert_array_equal(c, x[:, :, 1:7, 1:7])
    np.testing.assert_array_equal(paste_center(np.zeros_like(x), c)[:, :, 1:7, 1:7], c)
    assert paste_center(np.zeros_like(x), c)[:, :, 0, :].sum() == 0
    with pytest.raises(InputError):
        crop_offset(200, 227)


def test_normalized_step_is_float32_with_float64_factor():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 3, 5, 5)).astype(np.float32)
    g = rng.standard_normal((1, 3, 5, 5)).astype(np.float32)
    expect = x.copy()
    expect[0] += np.float32(0.37 / np.float64(np.abs(g[0]).mean())) * g[0]
    norms = normalized_step(x, g, 0.37, np.array([True]))
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, expect)
    assert norms[0] == pytest.approx(np.linalg.norm(g[0]), rel=1e-6)


def test_normalization_is_per_sample():
    x = np.zeros((2, 4), dtype=np.float32)
    g = np.array([[1, 1, 1, 1], [100, 100, 100, 100]], dtype=np.float32)
    normalized_step(x, g, 2.0, np.array([True, True]))
    np.testing.assert_array_equal(x, [[2, 2, 2, 2], [2, 2, 2, 2]])


def test_constrain_bound_then_l2_in_float64():
    code = np.array([[-1.5, 0.5, 3.0, 10.0]], dtype=np.float32)
    s = Settings(1, 1.0, 1.0, L2=0.99, upper_bound=np.array([1.0, 1.0, 2.0, 20.0]))
    out = constrain(code, s)
    expect64 = np.minimum(np.maximum(code, np.zeros((1, 4))), [[1.0, 1.0, 2.0, 20.0]]) * 0.99
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expect64.astype(np.float32))
    # Bounding comes before the decay: a unit at its bound ends below it.
    assert out[0, 2] == np.float32(2.0 * 0.99)


def test_constrain_clip_wins_over_bounds_and_stays_float32():
    code = np.array([[-3.0, 0.25, 3.0]], dtype=np.float32)
    out = constrain(code, Settings(1, 1.0, 1.0, L2=0.5, clip=True, upper_bound=np.array([0.1, 0.1, 0.1])))
    np.testing.assert_array_equal(out, np.array([[-0.5, 0.125, 0.5]], dtype=np.float32))


def test_constrain_l2_only_inside_open_interval():
    code = np.array([[2.0, -4.0]], dtype=np.float32)
    np.testing.assert_array_equal(constrain(code, Settings(1, 1, 1, L2=1.0)), code)
    np.testing.assert_array_equal(constrain(code, Settings(1, 1, 1, L2=0.0)), code)
    np.testing.assert_array_equal(constrain(code, Settings(1, 1, 1, L2=0.5)), code * np.float32(0.5))


def test_one_iteration_matches_independent_numpy():
    gen, tgt = LinearGenerator(), LinearTarget()
    start = random_code(0, (1, 4))
    s = Settings(1, 3.0, 0.0, L2=0.9, upper_bound=np.array([5.0, 5.0, 5.0, 5.0]))
    seen = []
    r = optimize(gen, tgt, OneHotObjective([Unit(1, x=1, y=0)]), start, s, progress=seen.append)

    # The same step, written out again from the matrices.
    c = start.astype(np.float32)
    x0 = (c @ gen.W.T).reshape(1, 3, 8, 8)
    crop = x0[:, :, 1:7, 1:7]
    onehot = np.zeros((1, 8), dtype=np.float32)
    onehot[0, 1 * 4 + 0 * 2 + 1] = 1  # channel 1, y 0, x 1 of a 2 x 2 x 2 blob
    g = (onehot @ tgt.V).reshape(crop.shape)
    x = crop + np.float32(3.0 / np.float64(np.abs(g).mean())) * g
    pasted = x0.copy()
    pasted[:, :, 1:7, 1:7] = x
    gc = (pasted - x0).reshape(1, -1) @ gen.W
    c2 = c + np.float32(3.0 / np.float64(np.abs(gc).mean())) * gc
    expect = (np.minimum(np.maximum(c2, 0), 5.0) * 0.9).astype(np.float32)

    np.testing.assert_allclose(r.code, expect, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(r.image, crop)  # the saved image is the crop before the image step
    np.testing.assert_array_equal(seen[0].image, crop)
    np.testing.assert_allclose(seen[0].stepped, x, rtol=1e-6, atol=1e-6)  # the debug frame: after the step
    assert r.activations.shape == (1, 1)
    assert r.activations[0, 0] == pytest.approx(float((crop.reshape(1, -1) @ tgt.V.T)[0, 5]), rel=1e-5)


def test_zero_gradient_stops_after_the_iteration():
    tgt = LinearTarget(grad_override=np.zeros((1, 3, 6, 6)))
    r = optimize(LinearGenerator(), tgt, OneHotObjective([Unit(0)]), np.ones((1, 4)),
                 Settings(10, 1.0, 1.0, L2=0.5))
    assert r.iterations == 1 and r.stopped == [True]
    np.testing.assert_array_equal(r.code, np.full((1, 4), 0.5, dtype=np.float32))  # decay still applied


def test_zero_gradient_says_which_gradient_and_when():
    tgt = LinearTarget(grad_override=np.zeros((1, 3, 6, 6)))
    r = optimize(LinearGenerator(), tgt, OneHotObjective([Unit(0)]), np.ones((1, 4)), Settings(10, 1.0, 1.0))
    assert r.stops[0] is not None and r.stops[0].iteration == 0 and not r.stops[0].failed
    assert "image gradient is zero" in r.stops[0].reason
    full = optimize(LinearGenerator(), LinearTarget(), OneHotObjective([Unit(0)]), np.ones((1, 4)),
                    Settings(3, 1.0, 1.0))
    assert full.stops == [None] and full.iterations == 3


def test_nan_gradient_fails_the_run_at_that_iteration():
    tgt = LinearTarget(grad_override=np.full((1, 3, 6, 6), np.nan))
    gen = LinearGenerator()
    r = optimize(gen, tgt, OneHotObjective([Unit(0)]), np.ones((1, 4)), Settings(10, 1.0, 1.0))
    # No step is taken from a NaN gradient (the released code skipped it, which left the code unchanged
    # for good); the run ends at once as failed, with the code as it was.
    np.testing.assert_array_equal(r.code, np.ones((1, 4), dtype=np.float32))
    assert r.iterations == 1
    assert r.stops[0].failed and r.stops[0].iteration == 0 and "NaN" in r.stops[0].reason


def test_code_overflow_fails_the_run():
    # A learning rate of 1e38 takes the float32 code to Inf in one step.
    r = optimize(LinearGenerator(), LinearTarget(), OneHotObjective([Unit(0)]), np.ones((1, 4)),
                 Settings(5, 1e38, 1e38))
    assert r.stops[0].failed and "overflowed" in r.stops[0].reason
    assert np.isfinite(r.code).all()  # the failed step is not kept


def test_nan_activation_fails_only_that_sample():
    class NanForSecond(LinearTarget):
        def activation_gradient(self, image, objective):
            acts, grad = super().activation_gradient(image, objective)
            if len(self.seen) == 2:
                acts = acts.copy()
                acts[1] = np.nan
            return acts, grad

    r = optimize(LinearGenerator(), NanForSecond(), OneHotObjective([Unit(0), Unit(1)]), np.ones((2, 4)),
                 Settings(4, 1.0, 1.0))
    assert r.stops[0] is None and r.stops[1].failed and r.stops[1].iteration == 1
    assert r.iterations == 4


def test_batch_equals_independent_runs():
    settings = Settings(4, 2.0, 0.5, L2=0.95, upper_bound=np.full(4, 3.0))
    units = [Unit(0), Unit(1, x=1, y=1)]
    starts = random_codes([0, 7], 4)
    batch = optimize(LinearGenerator(), LinearTarget(), OneHotObjective(units), starts, settings)
    for b in range(2):
        one = optimize(LinearGenerator(), LinearTarget(), OneHotObjective([units[b]]), starts[b : b + 1], settings)
        # Equal up to float32 rounding: BLAS may sum a batch of two in another order than one.
        np.testing.assert_allclose(batch.code[b], one.code[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(batch.image[b], one.image[0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(batch.activations[b], one.activations[0], rtol=1e-5)


def test_random_code_is_the_legacy_seeded_normal():
    np.random.seed(0)
    expect = np.random.normal(0, 1, (1, 4096))
    got = random_code(0, (1, 4096))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expect)
    assert not np.array_equal(random_code(1, (1, 4096)), got)


def test_objective_fc_and_conv_positions():
    fc = OneHotObjective([Unit(7)])
    d = fc.gradient(np.zeros((1, 10), dtype=np.float32))
    assert d.sum() == 1 and d[0, 7] == 1
    conv = OneHotObjective([Unit(2, x=3, y=1)])
    d = conv.gradient(np.zeros((1, 4, 5, 6), dtype=np.float32))
    assert d.sum() == 1 and d[0, 2, 1, 3] == 1
    blob = np.arange(4 * 5 * 6, dtype=np.float32).reshape(1, 4, 5, 6)
    assert conv.values(blob)[0] == blob[0, 2, 1, 3]


def test_display_normalization():
    img = np.zeros((3, 2, 2), dtype=np.float32)
    img[0] = -200  # B: clipped to -120 -> 0
    img[1] = 0  # G: the middle -> 0.5
    img[2] = 60  # R: 180/240 = 0.75
    out = to_display(img)
    assert out.shape == (2, 2, 3)
    np.testing.assert_allclose(out[0, 0], [0.75, 0.5, 0.0])


def test_read_bounds(tmp_path):
    good = tmp_path / "b.txt"
    good.write_text(" ".join(["12"] * 4096) + "\n")
    assert read_bounds(good, 4096).shape == (4096,)
    short = tmp_path / "short.txt"
    short.write_text("1 2 3")
    with pytest.raises(InputError, match="3 values"):
        read_bounds(short, 4096)
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 x3 4")
    with pytest.raises(InputError, match="non-number"):
        read_bounds(bad, 4)
    with pytest.raises(InputError, match="does not exist"):
        read_bounds(tmp_path / "none.txt", 4)
