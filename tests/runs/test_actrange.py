"""``dgn-am act-range``: a run against NumPy, and every bad input (the statistics: tests/core/test_bounds.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dgn_am import backend as cb
from dgn_am.common.errors import InputError
from dgn_am.mini import data
from dgn_am.runs import actrange

from ..conftest import PROTOTXT, run_cli

ENCODER = PROTOTXT / "mini" / "encoder.prototxt"


@pytest.fixture(scope="module")
def encoder_weights(tmp_path_factory) -> Path:
    """Random He-style weights: the check is about the arithmetic, not about a trained net."""
    return cb.save_random_weights(ENCODER, tmp_path_factory.mktemp("enc") / "encoder.caffemodel", 5)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Path, np.ndarray]:
    images, labels = data.make_split("heldout", 1, seed=7)
    d = tmp_path_factory.mktemp("images")
    data.write_folder(images, labels, d)
    (d / "notes.txt").write_text("not an image, and not read")
    return d, images


def test_act_range_matches_numpy(folder, encoder_weights, tmp_path):
    d, images = folder
    out = tmp_path / "sub" / "fc6.txt"
    result = actrange.compute(ENCODER, encoder_weights, "fc6", d, 2.0, "128", out, decimals=4)
    c = cb.caffe()
    net = c.Net(str(ENCODER), c.TEST, weights=str(encoder_weights))
    net.blobs["data"].reshape(len(images), 3, 64, 64)
    net.reshape()
    net.blobs["data"].data[...] = data.to_blob(images)  # pixel - 128, BGR, as the mini nets take
    net.forward()
    fc6 = net.blobs["fc6"].data.astype(np.float64)
    assert fc6.min() >= 0 and fc6.max() > 0  # post-ReLU, not all dead
    expect = np.maximum(fc6.mean(axis=0) + 2.0 * fc6.std(axis=0), 0)
    assert result.n_images == len(images) == 10
    np.testing.assert_allclose(result.bounds, expect, rtol=1e-4, atol=1e-4)
    written = np.array(out.read_text().split(), dtype=float)
    assert out.read_text().count("\n") == 1 and written.size == 256
    np.testing.assert_allclose(written, np.round(expect, 4), atol=2e-4)


def test_imagenet_mean_is_the_centre_crop(folder, encoder_weights, tmp_path):
    d, images = folder
    result = actrange.compute(ENCODER, encoder_weights, "conv1", d, 1.0, "imagenet", tmp_path / "c.txt", decimals=3)
    mean = cb.imagenet_mean()[:, 96:160, 96:160].astype(np.float32)  # (256 - 64) // 2 = 96
    c = cb.caffe()
    net = c.Net(str(ENCODER), c.TEST, weights=str(encoder_weights))
    net.blobs["data"].reshape(len(images), 3, 64, 64)
    net.reshape()
    net.blobs["data"].data[...] = images[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) - mean
    net.forward()
    conv1 = net.blobs["conv1"].data.reshape(len(images), -1).astype(np.float64)
    assert result.bounds.size == 32 * 30 * 30  # per element of a conv blob
    np.testing.assert_allclose(result.bounds, np.maximum(conv1.mean(0) + conv1.std(0), 0), rtol=1e-4, atol=1e-3)


def _one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dgn-am: error: "), proc.stderr
    return lines[0]


def test_cli_writes_the_file(folder, encoder_weights, tmp_path):
    d, _ = folder
    out = tmp_path / "fc6.txt"
    proc = run_cli("act-range", "--net_definition", str(ENCODER), "--net_weights", str(encoder_weights),
                   "--images", str(d), "--k", "3", "--mean", "128", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "over 10 images" in proc.stdout and str(out) in proc.stdout
    assert all(f.isdigit() for f in out.read_text().split()) and len(out.read_text().split()) == 256


def test_cli_bad_inputs_fail_with_one_line(folder, encoder_weights, tmp_path):
    d, _ = folder
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no images here")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"\x89PNG not really")
    out = str(tmp_path / "o.txt")

    def run(images: Path, *extra: str):
        return run_cli("act-range", "--net_definition", str(ENCODER), "--net_weights", str(encoder_weights),
                       "--images", str(images), "--output", out, "--mean", "128", *extra)

    assert "holds no images" in _one_error_line(run(empty))
    assert "does not exist" in _one_error_line(run(tmp_path / "nowhere"))
    assert "a.png is not a readable image" in _one_error_line(run(broken))
    assert "no blob 'fc9'" in _one_error_line(run(d, "--layer", "fc9"))
    assert "--k must be a number in (0, 100]" in _one_error_line(run(d, "--k", "0"))
    assert "--k must be a number in (0, 100]" in _one_error_line(run(d, "--k", "-1"))
    assert "--k must be a number in (0, 100]" in _one_error_line(run(d, "--k", "1e308"))
    assert "--decimals must be between 0 and 10" in _one_error_line(run(d, "--decimals", "1000000000"))
    assert "--mean must be" in _one_error_line(run(d, "--mean", "grey"))
    assert not Path(out).exists()


def test_validation_precedes_caffe(folder, tmp_path):
    """A bad k or folder is reported even when the net files are garbage, so Caffe never sees them."""
    d, _ = folder
    junk = tmp_path / "junk.prototxt"
    junk.write_text("this is not a net")
    with pytest.raises(InputError, match="--k"):
        actrange.compute(junk, junk, "fc6", d, float("nan"), "128", tmp_path / "x.txt")
    with pytest.raises(InputError, match="holds no images"):
        actrange.compute(junk, junk, "fc6", tmp_path, 3.0, "128", tmp_path / "x.txt")
