"""``dgn-am neighbors`` (S22): each result's nearest real image of its class, against a brute-force search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import dgn_am
from dgn_am import backend as cb
from dgn_am.common.errors import InputError
from dgn_am.mini import data
from dgn_am.results.images import read_image
from dgn_am.runs import neighbors

from ..conftest import PROTOTXT, ROOT

ENCODER = PROTOTXT / "mini" / "encoder.prototxt"
WEIGHTS = ROOT / "nets" / "mini" / "encoder.caffemodel"
LABELS = ROOT / "nets" / "mini" / "labels.txt"
PER_CLASS = 8


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    images = tmp_path_factory.mktemp("heldout")
    data.export(images, "heldout", PER_CLASS)
    results = tmp_path_factory.mktemp("results")
    model = dgn_am.DGNAM.mini()
    model.save(model.synthesize([2, 5], n_iters=3), results)
    return images, results


def test_nearest_images_are_the_closest_of_their_class(folders, tmp_path):
    images, results = folders
    found = neighbors.find(ENCODER, WEIGHTS, results, images, LABELS, ["conv1", "fc8"], "128", tmp_path, batch=9)
    assert len(found.nearest) == 2 and len(found.strips) == 2 and all(p.is_file() for p in found.strips)
    c = cb.caffe()
    net = c.Net(str(ENCODER), c.TEST, weights=str(WEIGHTS))

    def fc8(rgb: np.ndarray) -> np.ndarray:
        net.blobs["data"].reshape(1, 3, 64, 64)
        net.blobs["data"].data[...] = data.to_blob(rgb[None])
        net.forward()
        return net.blobs["fc8"].data[0].copy()

    for name, spaces in found.nearest.items():
        record = json.loads((results / name).read_text())
        unit = record["parameters"]["unit"]
        synthetic = read_image(results / record["results"]["outputs"]["png"])
        real = sorted((images / data.CLASSES[unit]).glob("*.png"))
        pix = [np.linalg.norm(read_image(p).astype(np.float32) - synthetic.astype(np.float32)) for p in real]
        assert Path(spaces["pixels"][0]) == real[int(np.argmin(pix))]
        assert spaces["pixels"][1] == pytest.approx(min(pix), rel=1e-5)
        codes = [np.linalg.norm(fc8(read_image(p)) - fc8(synthetic)) for p in real]
        assert Path(spaces["fc8"][0]) == real[int(np.argmin(codes))]
        assert spaces["fc8"][1] == pytest.approx(min(codes), rel=1e-4)
    report = json.loads((tmp_path / "neighbors.json").read_text())
    assert report["spaces"] == ["pixels", "conv1", "fc8"]


def test_bad_input_is_one_line(folders, tmp_path):
    images, results = folders
    with pytest.raises(InputError, match="no blob 'pool9'"):
        neighbors.find(ENCODER, WEIGHTS, results, images, LABELS, ["pool9"], "128", tmp_path / "a")
    with pytest.raises(InputError, match="no dgn-am run manifests"):
        neighbors.find(ENCODER, WEIGHTS, images, images, LABELS, ["fc8"], "128", tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
