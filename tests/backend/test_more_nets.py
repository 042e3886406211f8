"""The Places205 AlexNet and BVLC GoogLeNet definitions against the released deploy nets.

The expected names, shapes and counts are the releases' (placesCNN places205CNN_deploy.prototxt,
BVLC models/bvlc_googlenet/deploy.prototxt), written out here independently of dgn_am.backend.netspecs.
"""

from __future__ import annotations

import caffe
import numpy as np
import pytest

from dgn_am import backend as cb
from dgn_am.backend.netinfo import WeightBlob, WeightsInfo, check_weights, receptive_field
from dgn_am.common.errors import InputError

from ..conftest import PROTOTXT

PLACES = PROTOTXT / "places205_alexnet.prototxt"
GOOGLENET = PROTOTXT / "googlenet.prototxt"
MODULES = ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
BRANCHES = ["1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool_proj"]


@pytest.fixture(scope="module")
def places():
    return cb.probe(PLACES)


@pytest.fixture(scope="module")
def google():
    return cb.probe(GOOGLENET)


@pytest.fixture(scope="module")
def google_weights(tmp_path_factory):
    return cb.save_random_weights(GOOGLENET, tmp_path_factory.mktemp("googlenet") / "g.caffemodel", 3)


# --- Places205 AlexNet ------------------------------------------------------------------------


def test_places_blob_shapes(places):
    assert places.inputs == ["data"] and places.blobs["data"] == (1, 3, 227, 227)
    assert places.blobs["conv5"] == (1, 256, 13, 13)
    assert places.blobs["pool5"] == (1, 256, 6, 6)
    assert places.blobs["fc8"] == (1, 205) and places.blobs["prob"] == (1, 205)
    assert places.params["fc8"] == [(205, 4096), (205,)]
    assert places.params["conv2"][0] == (256, 48, 5, 5)  # group 2


def test_places_is_caffenet_but_for_fc8():
    caffenet = cb.probe(PROTOTXT / "caffenet.prototxt")
    places = cb.probe(PLACES)
    assert places.layers == caffenet.layers
    assert [name for name, _ in places.layers] == [
        "data", "conv1", "relu1", "pool1", "norm1", "conv2", "relu2", "pool2", "norm2", "conv3", "relu3",
        "conv4", "relu4", "conv5", "relu5", "pool5", "fc6", "relu6", "fc7", "relu7", "fc8", "prob"]
    differ = [k for k in caffenet.params if caffenet.params[k] != places.params[k]]
    assert differ == ["fc8"]
    text = PLACES.read_text()
    assert "force_backward: true" in text and "lr_mult: 0" in text


def test_places_conv5_receptive_field():
    layers = cb.spatial_layers(PLACES)
    assert receptive_field(layers, "conv5", 6, 6, (227, 227)) == (32, 32, 163, 163)


def test_places_weights_check(places, models, tmp_path):
    saved = cb.save_random_weights(PLACES, tmp_path / "places.caffemodel", 4)
    check_weights(places, cb.read_weights(saved))
    # The released file is a 2014 V1 caffemodel with legacy 4-D blob shapes; check_weights must take those.
    legacy = [(name, [WeightBlob((1,) * (4 - len(s)) + s, legacy=True, count=int(np.prod(s))) for s in shapes])
              for name, shapes in places.params.items()]
    check_weights(places, WeightsInfo(PLACES, legacy))
    with pytest.raises(InputError, match=r"'fc8' blob 0 has shape \[1000, 4096\].*expects \[205, 4096\]"):
        check_weights(places, cb.read_weights(models.caffenet))


# --- GoogLeNet --------------------------------------------------------------------------------


def test_googlenet_blob_shapes(google):
    b = google.blobs
    assert google.inputs == ["data"] and b["data"] == (1, 3, 224, 224)
    assert b["conv1/7x7_s2"] == (1, 64, 112, 112)
    assert b["pool1/3x3_s2"] == (1, 64, 56, 56)  # Caffe's pooling rounds up: ceil(109 / 2) + 1
    assert b["pool2/3x3_s2"] == (1, 192, 28, 28)
    assert b["inception_3a/output"] == (1, 256, 28, 28)
    assert b["inception_3b/output"] == (1, 480, 28, 28)
    assert b["inception_4a/output"] == (1, 512, 14, 14)
    assert b["pool3/3x3_s2"] == (1, 480, 14, 14)
    assert b["inception_4e/output"] == (1, 832, 14, 14)
    assert b["pool4/3x3_s2"] == (1, 832, 7, 7)
    assert b["inception_5b/output"] == (1, 1024, 7, 7)
    assert b["pool5/7x7_s1"] == (1, 1024, 1, 1)
    assert b["loss3/classifier"] == (1, 1000) and b["prob"] == (1, 1000)


def test_googlenet_parameterized_layers_are_the_releases(google):
    expected = ["conv1/7x7_s2", "conv2/3x3_reduce", "conv2/3x3"]
    expected += [f"inception_{m}/{br}" for m in MODULES for br in BRANCHES]
    expected += ["loss3/classifier"]
    with_params = [name for name, shapes in google.params.items() if shapes]
    assert len(with_params) == 58 and sorted(with_params) == sorted(expected)
    assert google.params["inception_4a/3x3"] == [(208, 96, 3, 3), (208,)]
    assert google.params["inception_5b/5x5"] == [(128, 48, 5, 5), (128,)]
    assert google.params["loss3/classifier"] == [(1000, 1024), (1000,)]


def test_googlenet_layer_order_is_the_releases(google):
    names = [layer.name for layer in cb.parse_definition(GOOGLENET).layer]  # the built net adds Split layers
    head = ["data", "conv1/7x7_s2", "conv1/relu_7x7", "pool1/3x3_s2", "pool1/norm1", "conv2/3x3_reduce",
            "conv2/relu_3x3_reduce", "conv2/3x3", "conv2/relu_3x3", "conv2/norm2", "pool2/3x3_s2"]
    expected = list(head)
    for m in MODULES:
        if m == "4a":
            expected.append("pool3/3x3_s2")
        if m == "5a":
            expected.append("pool4/3x3_s2")
        p = f"inception_{m}/"
        expected += [p + "1x1", p + "relu_1x1", p + "3x3_reduce", p + "relu_3x3_reduce", p + "3x3", p + "relu_3x3",
                     p + "5x5_reduce", p + "relu_5x5_reduce", p + "5x5", p + "relu_5x5", p + "pool",
                     p + "pool_proj", p + "relu_pool_proj", p + "output"]
    expected += ["pool5/7x7_s1", "loss3/classifier", "prob"]
    assert names == expected
    types = dict(google.layers)
    assert types["inception_4c/output"] == "Concat" and types["pool5/7x7_s1"] == "Pooling"
    text = GOOGLENET.read_text()
    assert "force_backward: true" in text and "pool: AVE" in text


def test_googlenet_receptive_field_unites_branches():
    # inception_3a/output (14, 14): its widest branch is the 5x5 one; by hand, back through 5x5 p2 ->
    # pool2 k3 s2 -> conv2 3x3 p1 -> pool1 k3 s2 -> conv1 k7 s2 p3 gives rows 89..147.
    layers = cb.spatial_layers(GOOGLENET)
    assert receptive_field(layers, "inception_3a/output", 14, 14, (224, 224)) == (89, 89, 59, 59)
    assert receptive_field(layers, "inception_3a/3x3", 14, 14, (224, 224)) == (97, 97, 43, 43)
    assert receptive_field(layers, "inception_3a/1x1", 14, 14, (224, 224)) == (105, 105, 27, 27)
    assert receptive_field(layers, "loss3/classifier", 0, 0, (224, 224)) == (0, 0, 224, 224)


def test_googlenet_weights_check(google, google_weights, models):
    check_weights(google, cb.read_weights(google_weights))
    with pytest.raises(InputError, match="matches no layer"):
        check_weights(google, cb.read_weights(models.generator))


def test_googlenet_gradient_reaches_data(google_weights):
    net = caffe.Net(str(GOOGLENET), caffe.TEST, weights=str(google_weights))
    rng = np.random.default_rng(0)
    net.blobs["data"].data[...] = rng.normal(0, 50, net.blobs["data"].data.shape).astype(np.float32)
    net.forward(end="loss3/classifier")
    scores = net.blobs["loss3/classifier"].data
    assert np.isfinite(scores).all() and scores.std() > 0
    top = net.blobs["loss3/classifier"]
    top.diff[...] = 0
    top.diff[0, 643] = 1
    grad = net.backward(start="loss3/classifier")["data"]
    assert np.isfinite(grad).all()
    assert np.abs(grad).mean() > 0
    # The classifier sees the whole image: the gradient reaches all four corners' quadrants.
    for rows in (slice(0, 112), slice(112, 224)):
        for cols in (slice(0, 112), slice(112, 224)):
            assert np.abs(grad[0, :, rows, cols]).max() > 0
