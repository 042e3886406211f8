"""The miniature generator's training (dgn_am.mini.gan): each loss trains, and G gets exactly its gradient.

Everything runs on a random-weight E (the comparator's source) and a handful of dataset images at batch 4,
so the file takes seconds. Gradients are checked against central finite differences of the total loss,
computed independently: G's forward, then C's and D's forward, then the loss formulas in NumPy.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from dgn_am import backend as cb
from dgn_am.backend import caffe
from dgn_am.mini import data, gan, losses, netspecs, solvers

from ..conftest import PROTOTXT, ROOT

B = 4


@pytest.fixture(scope="module")
def encoder_weights(tmp_path_factory) -> Path:
    caffe().set_random_seed(7)
    net = solvers.deploy_net(netspecs.encoder(B))
    return solvers.save_weights(net, tmp_path_factory.mktemp("mini_gan") / "encoder.caffemodel")


@pytest.fixture(scope="module")
def batch(encoder_weights) -> tuple[np.ndarray, np.ndarray]:
    """(codes, real images as blobs) for B images of different classes."""
    images, _ = data.make_split("train", 1, seed=3)
    real = data.to_blob(images[:B])
    encoder = solvers.deploy_net(netspecs.encoder(B), weights=encoder_weights)
    return gan.encode_codes(encoder, images[:B]), real


def trainer(tmp_path: Path, weights: Path, **changes) -> gan.GanTrainer:
    base = gan.GanConfig(batch=B, steps=20, lambda_img=1, lambda_shape=0, lambda_feat=1, lambda_adv=100, code_noise=0)
    config = dataclasses.replace(base, **changes)
    return gan.GanTrainer(weights, config, tmp_path)


def g_weights(t: gan.GanTrainer) -> dict[str, np.ndarray]:
    return {k: v[0].data.copy() for k, v in t.g.params.items()}


def total_loss(t: gan.GanTrainer, codes: np.ndarray, real: np.ndarray) -> float:
    """The G loss from its definition, recomputed from scratch (float64 arithmetic on the nets' outputs)."""
    cfg = t.config
    fake = t.generate(codes).astype(np.float64)
    loss = cfg.lambda_img * np.sum((fake - real) ** 2) / (2 * len(real))
    if cfg.lambda_shape:  # the image loss up to colour: the best affine colour map per image and channel
        for f, x in zip(fake.reshape(len(real), 3, -1), real.reshape(len(real), 3, -1).astype(np.float64), strict=True):
            for fc, xc in zip(f, x, strict=True):
                design = np.stack([fc, np.ones_like(fc)], axis=1)
                coef, *_ = np.linalg.lstsq(design, xc, rcond=None)
                loss += cfg.lambda_shape * np.sum((design @ coef - xc) ** 2) / (2 * len(real))
    if cfg.lambda_feat:
        f_fake = t.comparator_features(fake.astype(np.float32)).astype(np.float64)
        f_real = t.comparator_features(real).astype(np.float64)
        loss += cfg.lambda_feat * np.sum((f_fake - f_real) ** 2) / (2 * len(real))
    if cfg.lambda_adv:
        t._feed_d(fake.astype(np.float32), codes, np.ones((len(real), 1), np.float32))
        t.d.forward()
        logit = t.d.blobs["logit"].data.astype(np.float64).ravel()
        loss += cfg.lambda_adv * np.mean(np.logaddexp(0, -logit))  # -log sigmoid(logit)
    return float(loss)


def g_gradient(t: gan.GanTrainer, codes: np.ndarray, real: np.ndarray) -> dict[str, np.ndarray]:
    """The gradient G's solver would step on: fed exactly as ``GanTrainer.step`` feeds it."""
    fake = t.generate(codes)
    target = t.comparator_features(real) if t.c is not None else None
    extra, _ = t.extra_gradient(codes, fake, target, real)
    t.load_g(codes, real, extra)
    t.g.clear_param_diffs()
    t.g.forward()
    t.g.backward()
    return {k: v[0].diff.copy() for k, v in t.g.params.items()}


@pytest.mark.parametrize("lambdas", [(1, 0, 0), (1, 1, 0), (1, 1, 100)], ids=["img", "img+feat", "img+feat+adv"])
def test_each_loss_trains_g_and_d(tmp_path, encoder_weights, batch, lambdas):
    codes, real = batch
    t = trainer(tmp_path, encoder_weights, lambda_img=lambdas[0], lambda_feat=lambdas[1], lambda_adv=lambdas[2])
    assert (t.c is not None) == bool(lambdas[1]) and (t.d is not None) == bool(lambdas[2])
    g0 = g_weights(t)
    d0 = {k: v[0].data.copy() for k, v in t.d.params.items()} if t.d is not None else {}
    steps = [t.step(codes, real) for _ in range(3)]
    for s in steps:
        assert np.isfinite(s.img)
        assert np.isfinite(s.feat) == bool(lambdas[1])
        assert np.isfinite(s.adv) == np.isfinite(s.d) == bool(lambdas[2])
    assert all(not np.array_equal(g0[k], v) for k, v in g_weights(t).items()), "every G layer must learn"
    if t.d is not None:
        assert steps[0].d_stepped
        assert all(not np.array_equal(d0[k], v[0].data) for k, v in t.d.params.items())
    assert t.g_solver.iter == 3


@pytest.mark.parametrize("lambdas", [(1, 0, 0, 0), (0, 0, 0, 1), (0, 1, 0, 0), (0, 0, 1, 0), (1e-3, 2, 3000, 1e-3)],
                         ids=["img", "shape", "feat", "adv", "all"])
def test_g_gradient_matches_finite_differences(tmp_path, encoder_weights, batch, lambdas):
    codes, real = batch
    t = trainer(tmp_path, encoder_weights, lambda_img=lambdas[0], lambda_feat=lambdas[1], lambda_adv=lambdas[2],
                lambda_shape=lambdas[3])
    if t.d is not None:
        for _ in range(2):  # a D that has learned something, so its gradient is not the initial one
            t.d_step(codes, real, t.generate(codes))
    grads = g_gradient(t, codes, real)
    for layer in ("defc7", "deconv2", "deconv0"):
        w = t.g.params[layer][0]
        g = grads[layer].astype(np.float64)
        norm = np.linalg.norm(g)
        assert norm > 0
        direction = g / norm
        w0 = w.data.copy()
        eps = 2.5e-4 * np.linalg.norm(w0)
        w.data[...] = w0 + eps * direction
        up = total_loss(t, codes, real)
        w.data[...] = w0 - eps * direction
        down = total_loss(t, codes, real)
        w.data[...] = w0
        numeric = (up - down) / (2 * eps)  # the directional derivative along the gradient: its norm
        assert numeric == pytest.approx(norm, rel=0.02), layer


def test_loss_weights_scale_their_gradient(tmp_path, encoder_weights, batch):
    """G's gradient is lambda_img * dL_img + lambda_feat * dL_feat: doubling lambda_feat doubles its part.

    (The feature loss's gradient is about 1000 times smaller than the image loss's at equal weights.)"""
    codes, real = batch
    base = g_gradient(trainer(tmp_path / "a", encoder_weights, lambda_feat=0, lambda_adv=0), codes, real)
    one = g_gradient(trainer(tmp_path / "b", encoder_weights, lambda_feat=1000, lambda_adv=0), codes, real)
    two = g_gradient(trainer(tmp_path / "c", encoder_weights, lambda_feat=2000, lambda_adv=0), codes, real)
    for k in base:
        feat = one[k].astype(np.float64) - base[k]
        assert np.linalg.norm(feat) > 1e-3 * np.linalg.norm(base[k])
        np.testing.assert_allclose(two[k] - base[k], 2 * feat, rtol=1e-3, atol=1e-4 * np.abs(feat).max())


def test_zero_weights_train_exactly_like_plain_image_loss(tmp_path, encoder_weights, batch):
    """lambda_feat = lambda_adv = 0 is plain image-loss training: the same as a Caffe net without the socket."""
    codes, real = batch
    t = trainer(tmp_path / "gan", encoder_weights, lambda_feat=0, lambda_adv=0)
    proto = netspecs.generator_train(B, 1.0)
    keep = [layer for layer in proto.layer if layer.name not in ("extra_grad", "extra_prod", "loss_extra")]
    del proto.layer[:]
    proto.layer.extend(keep)
    cfg = t.config
    plain = solvers.make_solver(proto, solvers.SolverConfig(
        max_iter=cfg.steps, base_lr=cfg.g_lr, momentum=cfg.beta1, weight_decay=0.0, lr_policy="multistep",
        gamma=0.2, stepvalue=(int(cfg.steps * cfg.decay_at),), random_seed=cfg.seed), tmp_path, "plain")
    for k, v in g_weights(t).items():
        np.testing.assert_array_equal(plain.net.params[k][0].data, v)  # same fillers, same seed
    for _ in range(3):
        t.step(codes, real)
        solvers.step(plain, ("loss_img",), feat=codes, target=real)
    for k, v in g_weights(t).items():
        np.testing.assert_allclose(plain.net.params[k][0].data, v, rtol=1e-5, atol=1e-7)


def test_saved_generator_is_the_trained_one_in_pixel_scale(tmp_path, encoder_weights, batch):
    codes, real = batch
    t = trainer(tmp_path, encoder_weights, lambda_adv=0)
    for _ in range(2):
        t.step(codes, real)
    path = t.save_generator(tmp_path / "generator.caffemodel")
    deploy = solvers.deploy_net(netspecs.generator(B), weights=path)
    solvers.set_inputs(deploy, feat=codes)
    deploy.forward()
    expected = t.generate(codes)
    np.testing.assert_allclose(deploy.blobs["deconv0"].data, expected, rtol=1e-4, atol=1e-3 * np.abs(expected).max())


def test_d_pauses_when_it_wins_too_clearly(tmp_path, encoder_weights, batch):
    codes, real = batch
    t = trainer(tmp_path / "paused", encoder_weights, d_pause_ratio=1e9)
    first = t.step(codes, real)
    d_after_first = {k: v[0].data.copy() for k, v in t.d.params.items()}
    later = [t.step(codes, real) for _ in range(2)]
    assert first.d_stepped and not any(s.d_stepped for s in later)
    assert all(np.array_equal(d_after_first[k], v[0].data) for k, v in t.d.params.items())
    always = trainer(tmp_path / "always", encoder_weights, d_pause_ratio=0.0)
    assert all(always.step(codes, real).d_stepped for _ in range(3))


def test_training_repeats_given_the_seed(tmp_path, encoder_weights, batch):
    codes, real = batch
    runs = []
    for name in ("a", "b"):
        t = trainer(tmp_path / name, encoder_weights, lambda_feat=1, lambda_adv=10)
        losses = [t.step(codes, real) for _ in range(2)]
        runs.append((g_weights(t), losses))
    (wa, la), (wb, lb) = runs
    assert la == lb
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k])


def test_shape_loss_ignores_colour_but_not_shape(batch):
    _, real = batch
    recoloured = real.copy()
    recoloured[:, 0] = -0.5 * real[:, 0] + 30  # another colour map per channel: same silhouettes
    recoloured[:, 2] = 2.0 * real[:, 2] - 10
    loss, grad = losses.shape_loss(recoloured, real)
    assert loss < 1e-6 * losses.shape_loss(np.zeros_like(real) + 1, real)[0] + 1e-3
    assert np.abs(grad).max() < 1e-4
    shifted = np.roll(real, 9, axis=3)  # the same image moved: the silhouettes no longer match
    assert losses.shape_loss(shifted, real)[0] > 0.1 * losses.shape_loss(np.zeros_like(real) + 1, real)[0]


def test_generator_output_stays_in_the_pixel_range(tmp_path, encoder_weights, batch):
    codes, _ = batch
    t = trainer(tmp_path, encoder_weights)
    for layer in t.g.params.values():  # large weights: the raw output would be far beyond +-128
        layer[0].data[...] *= 4
    image = t.generate(codes * 100)
    assert np.abs(image).max() <= netspecs.G_OUTPUT_RANGE
    assert np.abs(image).max() > 0.9 * netspecs.G_OUTPUT_RANGE


def test_noisy_codes_add_positive_noise_to_about_half_the_units():
    rng = np.random.default_rng(0)
    codes = np.zeros((50, 256), dtype=np.float32)
    codes[:, :10] = 5
    noisy = gan.noisy_codes(codes, 1.0, rng)
    added = noisy - codes
    assert noisy.dtype == np.float32 and (added >= 0).all()
    assert 0.4 < (added > 0).mean() < 0.6
    assert 0.5 < added[added > 0].mean() < 1.1  # |N(0, 1)| has mean 0.8


def test_generator_stage_smoke_saves_loadable_g_d_and_checkpoints(tmp_path, encoder_weights):
    """The ``generator`` stage end to end on a few images and steps: files that load into the shipped
    definitions (layer names and shapes checked), and a checkpoint that differs from the final G."""
    (tmp_path / "encoder.caffemodel").write_bytes(encoder_weights.read_bytes())
    config = gan.GanConfig(steps=4, batch=B, n_train_per_class=1)
    lines: list[str] = []
    result = gan.train_generator(tmp_path, log=lines.append, config=config, checkpoint_every=2)
    assert len(result.losses) == 4 and all(np.isfinite(s.shape) and np.isfinite(s.adv) for s in result.losses)
    checkpoint = tmp_path / "checkpoints" / "generator_iter2.caffemodel"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [checkpoint.name]  # not the last step
    g, _ = cb.load_net(PROTOTXT / "mini" / "generator.prototxt", tmp_path / "generator.caffemodel")
    g2, _ = cb.load_net(PROTOTXT / "mini" / "generator.prototxt", checkpoint)
    cb.load_net(PROTOTXT / "mini" / "discriminator.prototxt", tmp_path / "discriminator.caffemodel")
    assert not np.array_equal(g.params["defc7"][0].data, g2.params["defc7"][0].data)
    assert any("checkpoint" in line for line in lines) and "saved" in lines[-1]


def test_shipped_generator_and_discriminator_match_their_definitions():
    mini = ROOT / "nets" / "mini"
    g, _ = cb.load_net(PROTOTXT / "mini" / "generator.prototxt", mini / "generator.caffemodel")
    cb.load_net(PROTOTXT / "mini" / "discriminator.prototxt", mini / "discriminator.caffemodel")
    assert g.blobs["deconv0"].data.shape == (1, 3, data.SIZE, data.SIZE)
    assert sum(p.stat().st_size for p in mini.iterdir()) < 20e6  # the budget for committed weights


@pytest.mark.parametrize(("args", "words"), [
    (["generator", "--checkpoint_every", "-1"], "--checkpoint_every must be >= 0"),
    (["generator"], "needs"),
    (["bounds"], "needs"),
])
def test_train_cli_bad_input_is_one_line(tmp_path, args, words):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "dgn_am.mini.train", *args, "--out_dir", str(tmp_path / "m")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "m").exists()  # nothing made before the check
