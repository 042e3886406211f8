"""Receptive fields, the two-unit and softmax objectives, --x/--y, and the run manifest."""

from __future__ import annotations

import hashlib
import json

import caffe
import numpy as np
import pytest

from dgn_am import backend as cb
from dgn_am.backend.netinfo import receptive_field
from dgn_am.core.algorithm import Settings, optimize
from dgn_am.core.codes import random_code
from dgn_am.core.objectives import OneHotObjective, PairObjective, Unit

from ..conftest import PROTOTXT, run_cli, synth_args

SMALL_NET = """
name: "small"
force_backward: true
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 stride: 1 } }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


@pytest.fixture(scope="module")
def small_net(tmp_path_factory):
    d = tmp_path_factory.mktemp("small")
    proto = d / "small.prototxt"
    proto.write_text(SMALL_NET)
    weights = cb.save_random_weights(proto, d / "small.caffemodel", 3)
    return caffe.Net(str(proto), caffe.TEST, weights=str(weights))


def _objective_value(net, image, objective, layer):
    net.blobs["data"].data[...] = image
    net.forward(end=layer)
    return objective.values(net.blobs[layer].data)[0]


def _finite_difference(net, image, objective, layer, idx, eps=1e-2):
    plus, minus = image.copy(), image.copy()
    plus[idx] += eps
    minus[idx] -= eps
    return (_objective_value(net, plus, objective, layer) - _objective_value(net, minus, objective, layer)) / (2 * eps)


@pytest.mark.parametrize(
    ("layer", "first", "second"), [("fc", Unit(1), Unit(3)), ("conv", Unit(0, x=1, y=2), Unit(2, x=4, y=0))]
)
def test_pair_objective_gradient_matches_finite_differences(small_net, layer, first, second):
    rng = np.random.default_rng(0)
    image = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    objective = PairObjective(first, second, gamma=0.7)
    value, grad = cb.CaffeTarget(small_net, layer).activation_gradient(image, objective)
    assert value[0] == pytest.approx(_objective_value(small_net, image, objective, layer), rel=1e-6)
    a1, a2 = objective.pair(small_net.blobs[layer].data, 0)
    assert abs(a1 - a2) > 1e-2  # away from the kink, where the penalty is differentiable
    for idx in [(0, 0, 3, 3), (0, 1, 0, 7), (0, 2, 5, 1), (0, 0, 7, 0)]:
        fd = _finite_difference(small_net, image, objective, layer, idx)
        assert grad[idx] == pytest.approx(fd, rel=2e-2, abs=1e-3)


def test_softmax_objective_gradient_matches_finite_differences(small_net):
    image = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    objective = OneHotObjective([Unit(2)])
    value, grad = cb.CaffeTarget(small_net, "prob").activation_gradient(image, objective)
    assert 0 < value[0] < 1
    for idx in [(0, 0, 3, 3), (0, 1, 0, 7), (0, 2, 5, 1)]:
        fd = _finite_difference(small_net, image, objective, "prob", idx)
        assert grad[idx] == pytest.approx(fd, rel=3e-2, abs=1e-4)
    assert np.abs(grad).max() > 1e-4


def test_pair_objective_penalizes_imbalance():
    blob = np.array([[3.0, 1.0]], dtype=np.float32)
    obj = PairObjective(Unit(0), Unit(1), gamma=0.5)
    assert obj.values(blob)[0] == pytest.approx(3 + 1 - 0.5 * 2)
    np.testing.assert_allclose(obj.gradient(blob), [[0.5, 1.5]])  # the weaker unit is pushed harder
    assert PairObjective(Unit(0), Unit(1), gamma=0.0).values(blob)[0] == 4.0


def test_receptive_field_of_caffenet_conv5_matches_released_crop():
    layers = cb.spatial_layers(PROTOTXT / "caffenet.prototxt")
    assert receptive_field(layers, "conv5", 6, 6, (227, 227)) == (32, 32, 163, 163)
    assert receptive_field(layers, "conv1", 0, 0, (227, 227)) == (0, 0, 11, 11)
    assert receptive_field(layers, "conv1", 2, 1, (227, 227)) == (4, 8, 11, 11)  # stride 4: rows 4.., cols 8..
    assert receptive_field(layers, "fc6", 0, 0, (227, 227)) == (0, 0, 227, 227)
    top, left, h, w = receptive_field(layers, "conv5", 0, 0, (227, 227))
    assert (top, left) == (0, 0) and h == w == 163 - 64  # clipped at the image border


def test_softmax_objective(models):
    gen, _ = cb.load_net(PROTOTXT / "generator_fc6.prototxt", models.generator)
    tgt, _ = cb.load_net(PROTOTXT / "caffenet.prototxt", models.caffenet)
    G, start = cb.CaffeGenerator(gen), random_code(0, (1, 4096))
    tgt.blobs["data"].data[...] = G.generate(start.astype(np.float32))[:, :, 14:241, 14:241]
    prob = tgt.forward()["prob"][0].copy()
    unit = int(np.argsort(prob)[-2])  # random weights: most classes sit at ~0, where the gradient vanishes
    r = optimize(G, cb.CaffeTarget(tgt, "prob"), OneHotObjective([Unit(unit)]), start,
                 Settings(3, 8.0, 1e-10, L2=0.99, upper_bound=np.full(4096, 12.0)))
    assert r.activations[0, 0] == pytest.approx(float(prob[unit]), rel=1e-4)
    assert np.all((r.activations > 0) & (r.activations < 1))
    assert not np.array_equal(r.code, start.astype(np.float32))  # the code moved


def test_x_y_names_rf_crop_and_manifest(models, tmp_path):
    proc = run_cli(*synth_args(models, tmp_path, "--unit", "8", "--act_layer", "conv5", "--x", "9", "--y", "3",
                               n_iters=1))
    assert proc.returncode == 0, proc.stderr
    stem = "conv5_0008_x9_y3_01_1.0_2.0__0"
    from PIL import Image

    top, left, h, w = receptive_field(cb.spatial_layers(PROTOTXT / "caffenet.prototxt"), "conv5", 9, 3, (227, 227))
    assert Image.open(tmp_path / f"{stem}_rf.png").size == (w, h)
    m = json.loads((tmp_path / f"{stem}.json").read_text())
    assert m["parameters"]["x"] == 9 and m["parameters"]["y"] == 3 and m["parameters"]["seed"] == 0
    assert m["results"]["receptive_field"] == [top, left, h, w]
    assert m["models"]["target"]["weights_sha256"] == hashlib.sha256(models.caffenet.read_bytes()).hexdigest()
    proto_sha = hashlib.sha256((PROTOTXT / "caffenet.prototxt").read_bytes()).hexdigest()
    assert m["models"]["target"]["definition_sha256"] == proto_sha
    assert m["caffe"]["caffe_commit"] == "99bd99795dcdf0b1d3086a8d67ab1782a8a08383"
    assert m["device"].startswith("CPU: ") and m["version"] and m["wall_seconds"] > 0
    z = np.load(tmp_path / f"{stem}.npz")
    assert m["results"]["final_activation"] == pytest.approx(float(z["activations"][-1]))


def test_two_units_from_the_cli(models, tmp_path):
    proc = run_cli(*synth_args(models, tmp_path, "--unit", "643", "--unit2", "624", "--gamma", "0.5", n_iters=2))
    assert proc.returncode == 0, proc.stderr
    stem = "fc8_0643_and_0624_gamma0.5_02_1.0_2.0__0"
    m = json.loads((tmp_path / f"{stem}.json").read_text())
    assert m["parameters"]["unit2"] == 624 and m["parameters"]["gamma"] == 0.5
    bad = run_cli(*synth_args(models, tmp_path, "--unit", "1", "--unit2", "1000", "--gamma", "0.5"))
    assert bad.returncode == 2 and "--unit 1000" in bad.stderr
    assert run_cli(*synth_args(models, tmp_path, "--unit", "1", "--gamma", "0.5")).returncode == 2


def test_manifest_records_the_environment_that_changes_the_bits(monkeypatch):
    from dgn_am.results import manifest

    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("DGN_AM_CAFFE_STOCK", "1")
    monkeypatch.setenv("DGN_AM_UNRELATED", "x")
    record = manifest.build({"unit": 1}, {}, {}, "CPU: test", {"final_activation": 1.0}, 0.5)
    assert record["environment"] == {"OPENBLAS_CORETYPE": "Haswell", "DGN_AM_CAFFE_STOCK": "1"}
