"""The algorithm on real Caffe nets (the real architectures, random weights made by the tests)."""

from __future__ import annotations

import caffe
import numpy as np
import pytest

from dgn_am import backend as cb
from dgn_am.common.errors import InputError
from dgn_am.core.algorithm import Settings, optimize
from dgn_am.core.codes import random_code
from dgn_am.core.objectives import OneHotObjective, Unit
from dgn_am.core.pixels import encoder_input

from ..conftest import PROTOTXT


@pytest.fixture(scope="module")
def nets(models):
    gen, gen_info = cb.load_net(PROTOTXT / "generator_fc6.prototxt", models.generator)
    tgt, tgt_info = cb.load_net(PROTOTXT / "caffenet.prototxt", models.caffenet)
    return gen, tgt, gen_info, tgt_info


def test_loaded_weights_are_the_saved_ones(nets, models):
    gen, tgt, _, _ = nets
    ref = caffe.Net(str(PROTOTXT / "caffenet.prototxt"), caffe.TEST, weights=str(models.caffenet))
    np.testing.assert_array_equal(tgt.params["fc8"][0].data, ref.params["fc8"][0].data)
    assert np.abs(gen.params["deconv0"][0].data).sum() > 0  # not the zero filler


def test_one_iteration_against_numpy_from_raw_blobs(nets):
    gen, tgt, _, _ = nets
    start = random_code(0, (1, 4096))
    bound = np.full(4096, 6.0)
    settings = Settings(1, 8.0, 1e-10, L2=0.99, upper_bound=bound)
    r = optimize(cb.CaffeGenerator(gen), cb.CaffeTarget(tgt, "fc8"), OneHotObjective([Unit(643)]), start, settings)

    # Independently, with pycaffe calls and NumPy only.
    code = start.astype(np.float32)
    gen.blobs["feat"].data[...] = code
    x0 = gen.forward()["deconv0"].copy()
    crop = x0[:, :, 14:241, 14:241].copy()
    tgt.blobs["data"].data[...] = crop
    fc8 = tgt.forward(end="fc8")["fc8"].copy()
    tgt.blobs["fc8"].diff[...] = 0
    tgt.blobs["fc8"].diff[0, 643] = 1
    g = tgt.backward(start="fc8")["data"].astype(np.float64)
    tgt.blobs["fc8"].diff[...] = 0
    x = crop.astype(np.float64) + 8.0 / np.abs(g).mean() * g
    pasted = x0.astype(np.float64)
    pasted[:, :, 14:241, 14:241] = x
    gen.blobs["deconv0"].diff[...] = pasted - x0
    gc = gen.backward(start="deconv0")["feat"].astype(np.float64)
    c = code.astype(np.float64) + 8.0 / np.abs(gc).mean() * gc
    expect = np.minimum(np.maximum(c, 0), bound) * 0.99

    assert r.activations[0, 0] == pytest.approx(float(fc8[0, 643]), rel=1e-5)
    np.testing.assert_array_equal(r.image, crop)
    # float32 steps against a float64 reference: agreement to float32 precision of the step.
    np.testing.assert_allclose(r.code, expect, rtol=2e-3, atol=1e-3 * np.abs(expect).max())
    assert r.code.dtype == np.float32


def test_activation_rises_over_iterations(nets):
    # The first update also clips the N(0, 1) start code into [0, bound], which can lower the unit on
    # random weights; the climb shows over a few more iterations, from both of the first two values.
    gen, tgt, _, _ = nets
    r = optimize(cb.CaffeGenerator(gen), cb.CaffeTarget(tgt, "fc8"), OneHotObjective([Unit(1)]),
                 random_code(0, (1, 4096)), Settings(8, 2.0, 1e-10, L2=0.99, upper_bound=np.full(4096, 12.0)))
    assert r.activations[0, -1] > max(r.activations[0, 0], r.activations[0, 1]) + 5


def test_conv_unit_off_diagonal(nets):
    gen, tgt, _, tgt_info = nets
    assert tgt_info.blobs["conv5"] == (1, 256, 13, 13)
    seen = []
    optimize(cb.CaffeGenerator(gen), cb.CaffeTarget(tgt, "conv5"), OneHotObjective([Unit(8, x=9, y=3)]),
             random_code(0, (1, 4096)), Settings(1, 1.0, 1.0), progress=lambda it: seen.append(it))
    tgt.blobs["data"].data[...] = seen[0].image
    conv5 = tgt.forward(end="conv5")["conv5"]
    assert seen[0].activations[0] == pytest.approx(float(conv5[0, 8, 3, 9]), rel=1e-5)
    assert seen[0].activations[0] != pytest.approx(float(conv5[0, 8, 9, 3]), rel=1e-3)


def test_batch_of_two_matches_single_runs(nets):
    gen, tgt, _, _ = nets
    G, T = cb.CaffeGenerator(gen), cb.CaffeTarget(tgt, "fc8")
    s = Settings(2, 8.0, 1e-10, L2=0.99, upper_bound=np.full(4096, 12.0))
    starts = np.concatenate([random_code(0, (1, 4096)), random_code(1, (1, 4096))])
    both = optimize(G, T, OneHotObjective([Unit(643), Unit(624)]), starts, s)
    one = optimize(G, T, OneHotObjective([Unit(624)]), starts[1:], s)
    np.testing.assert_allclose(both.code[1], one.code[0], rtol=1e-3, atol=1e-4)
    assert both.code.shape == (2, 4096)


def test_start_from_image_is_encoder_fc6(nets, models):
    _, tgt, _, _ = nets
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (300, 280, 3), dtype=np.uint8)
    mean = cb.imagenet_mean()
    assert mean.shape == (3, 256, 256)
    data = encoder_input(rgb, mean, (227, 227))
    assert data.shape == (1, 3, 227, 227) and data.dtype == np.float32
    code = cb.encode(tgt, data, "fc6")
    assert code.shape == (1, 4096)
    assert code.min() >= 0  # post-ReLU, as the released encoder gave it
    # The same preprocessing by hand: BGR, mean's centre crop at offset 14.
    from PIL import Image

    resized = np.asarray(Image.fromarray(rgb).resize((227, 227), Image.BILINEAR), dtype=np.float32)
    manual = resized.transpose(2, 0, 1)[::-1] - mean[:, 14:241, 14:241]
    np.testing.assert_allclose(data[0], manual, rtol=1e-6, atol=1e-4)


def test_probe_turns_caffe_abort_into_one_line(tmp_path):
    bad = tmp_path / "bad.prototxt"
    bad.write_text('layer { name: "data" type: "Input" top: "data"'
                   ' input_param { shape { dim: 1 dim: 3 dim: 4 dim: 4 } } }\n'
                   'layer { name: "c" type: "Convolution" bottom: "data" top: "c"'
                   ' convolution_param { num_output: 2 kernel_size: 9 } }\n')
    with pytest.raises(InputError) as exc:
        cb.probe(bad)
    assert "Caffe rejected" in str(exc.value) and "\n" not in str(exc.value)


def test_prototxt_files_are_current():
    from dgn_am.backend.netspecs import all_definitions, render

    for name, proto in all_definitions().items():
        assert (PROTOTXT / name).read_text() == render(proto), f"{name} is stale: run scripts/make_prototxts.py"


def test_prototxts_have_released_layer_names_and_no_cudnn():
    text = (PROTOTXT / "generator_fc6.prototxt").read_text()
    for name in ["defc7", "defc6", "defc5", "deconv5", "conv5_1", "deconv4", "conv4_1", "deconv3", "conv3_1",
                 "deconv2", "deconv1", "deconv0"]:
        assert f'name: "{name}"' in text
    assert "CUDNN" not in text and "force_backward: true" in text
    assert "dim: 0" in text  # the reshape copies the batch size
    pool5 = cb.probe(PROTOTXT / "generator_pool5.prototxt")
    assert pool5.blobs["feat"] == (1, 256, 6, 6) and pool5.blobs["deconv0"] == (1, 3, 256, 256)
    assert "force_backward: true" in (PROTOTXT / "caffenet.prototxt").read_text()


def test_generator_batch_reshape(nets):
    gen, _, _, _ = nets
    G = cb.CaffeGenerator(gen)
    out = G.generate(np.zeros((3, 4096), dtype=np.float32))
    assert out.shape == (3, 3, 256, 256)
    G.generate(np.zeros((1, 4096), dtype=np.float32))


def test_build_info_records_the_pinned_commit():
    info = cb.build_info()
    assert info["caffe_commit"] == "99bd99795dcdf0b1d3086a8d67ab1782a8a08383"
    assert "-DCPU_ONLY=ON" in info["cmake_flags"] or info["cuda"]


def test_weights_reader_handles_what_caffe_saves(models):
    w = cb.read_weights(models.caffenet)
    blobs = dict(w.entries)
    assert [b.shape for b in blobs["fc8"]] == [(1000, 4096), (1000,)]
    assert blobs["conv1"][0].count == 96 * 3 * 11 * 11
    assert not w.v1 and not w.input_layer


def test_missing_weights_and_garbage(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        cb.read_weights(tmp_path / "nope.caffemodel")
    junk = tmp_path / "junk.caffemodel"
    junk.write_bytes(b"\xff" * 64)
    with pytest.raises(InputError, match="does not parse"):
        cb.read_weights(junk)


def test_cpu_mode_and_gpu_on_cpu_build():
    assert cb.set_mode(None).startswith("CPU: ")
    if not cb.build_info().get("cuda"):
        with pytest.raises(InputError, match="CPU-only"):
            cb.set_mode(0)



def test_feed_fills_a_spatial_code_from_a_flat_one_and_never_hands_caffe_fewer_axes(tmp_path):
    # pool5's generator takes a 256 x 6 x 6 code, the loop keeps it flat: feed must keep the blob 4-D
    # (a 2-D bottom makes Caffe's convolution abort the process) and fill it in order.
    proto = tmp_path / "tiny.prototxt"
    proto.write_text('name: "tiny"\nforce_backward: true\nlayer { name: "feat" type: "Input" top: "feat" '
                     'input_param { shape { dim: 1 dim: 4 dim: 2 dim: 2 } } }\n'
                     'layer { name: "conv" type: "Convolution" bottom: "feat" top: "conv" '
                     'convolution_param { num_output: 2 kernel_size: 1 } }\n')
    c = cb.caffe()
    net = c.Net(str(proto), c.TEST)
    flat = np.arange(3 * 16, dtype=np.float32).reshape(3, 16)
    cb.feed(net, feat=flat)
    assert net.blobs["feat"].data.shape == (3, 4, 2, 2)
    np.testing.assert_array_equal(net.blobs["feat"].data.reshape(3, -1), flat)
    net.forward()
    assert net.blobs["conv"].data.shape == (3, 2, 2, 2)
    cb.feed(net, feat=np.ones((2, 4, 3, 3), np.float32))  # as many axes as the blob: its whole shape
    assert net.blobs["feat"].data.shape == (2, 4, 3, 3)
    with pytest.raises(ValueError, match="per sample"):
        cb.feed(net, feat=np.ones((2, 5), np.float32))
