"""E and the independent classifier: definitions, a few real training steps, and the shipped weights."""

from __future__ import annotations

import numpy as np
import pytest

from dgn_am import backend as cb
from dgn_am.assets.actrange import read_bounds
from dgn_am.common.paths import ROOT
from dgn_am.mini import data, netspecs, solvers, train

from ..conftest import PROTOTXT

MINI = ROOT / "nets" / "mini"
NETS = {"encoder": ("encoder.prototxt", "encoder.caffemodel"), "classifier": ("classifier.prototxt",
                                                                               "classifier.caffemodel")}


@pytest.fixture(scope="module")
def fresh() -> tuple[np.ndarray, np.ndarray]:
    """20 images a class from a seed no training run used."""
    images, labels = data.make_split("heldout", 20, seed=2024)
    return data.to_blob(images), labels


def test_prototxts_are_current():
    for name, proto in netspecs.deploy_definitions().items():
        if name in ("encoder.prototxt", "classifier.prototxt"):
            assert (PROTOTXT / "mini" / name).read_text() == netspecs.render(proto), f"{name} is stale"


def test_encoder_is_the_shared_interface():
    info = cb.probe(PROTOTXT / "mini" / "encoder.prototxt")
    assert info.inputs == ["data"] and info.blobs["data"] == (1, 3, 64, 64)
    assert info.blobs["fc6"] == (1, netspecs.CODE_SIZE) and info.blobs["fc8"] == (1, 10)
    assert info.blobs["prob"] == (1, 10)
    types = dict(info.layers)
    assert types["relu6"] == "ReLU" and types["norm1"] == "LRN"
    assert "force_backward: true" in (PROTOTXT / "mini" / "encoder.prototxt").read_text()
    judge = cb.probe(PROTOTXT / "mini" / "classifier.prototxt")
    assert judge.blobs["prob"] == (1, 10)
    assert not set(judge.params) & set(info.params)  # no layer name shared: a different net


@pytest.mark.parametrize("kind", ["encoder", "classifier"])
def test_a_few_solver_steps_learn_and_repeat(kind, tmp_path):
    images, labels = data.make_split("train", 4, seed=11)
    blob, y = data.to_blob(images), labels.astype(np.float32)
    net = train.RECIPES[kind].net
    cfg = solvers.SolverConfig(max_iter=100, base_lr=1e-3, random_seed=3)

    def run(workdir):
        solver = solvers.make_solver(net(len(blob), train=True), cfg, workdir, kind)
        first = {k: [p.data.copy() for p in v] for k, v in solver.net.params.items()}
        losses = [solvers.step(solver, data=blob, label=y)["loss"] for _ in range(4)]
        return solver, first, losses

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    solver, first, losses = run(tmp_path / "a")
    assert np.all(np.isfinite(losses)) and losses[0] == pytest.approx(np.log(10), rel=0.2)  # near-uniform start
    assert losses[-1] < losses[0]  # the same batch four times: it must fit it better
    for name, params in solver.net.params.items():
        assert not np.array_equal(params[0].data, first[name][0]), f"{name} did not move"
    again, first2, losses2 = run(tmp_path / "b")
    assert losses2 == losses  # seeded Caffe fillers, same batches: the same run
    for name, params in again.net.params.items():
        np.testing.assert_array_equal(params[0].data, solver.net.params[name][0].data)


def test_train_stage_saves_a_loadable_model(tmp_path):
    splits = train.load_splits(train_per_class=8, heldout_per_class=2)
    lines: list[str] = []
    out = train.train_classifier("encoder", tmp_path / "e.caffemodel", splits, max_iter=3, log=lines.append)
    assert out.iterations == 3 and np.isfinite(out.final_loss) and 0 <= out.heldout_accuracy <= 1
    net, _ = cb.load_net(PROTOTXT / "mini" / "encoder.prototxt", out.path)
    assert net.params["conv1"][0].data.std() > 0
    assert lines[-1].startswith("encoder: held-out accuracy")
    bounds = train.compute_bounds(out.path, tmp_path / "b.txt", splits)
    assert bounds.shape == (256,) and (bounds >= 0).all()
    np.testing.assert_allclose(read_bounds(tmp_path / "b.txt", 256), bounds, atol=0.006)


def test_mirrored_batches():
    images, _ = data.make_split("train", 2, seed=0)
    blob = train.train_batch(images, np.random.default_rng(0))
    plain = data.to_blob(images)
    mirrored = [np.array_equal(b, p[..., ::-1]) for b, p in zip(blob, plain, strict=True)]
    kept = [np.array_equal(b, p) for b, p in zip(blob, plain, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True)) and any(mirrored) and any(kept)


@pytest.mark.parametrize("kind", ["encoder", "classifier"])
def test_shipped_weights_classify_fresh_images(kind, fresh):
    prototxt, weights = NETS[kind]
    net, _ = cb.load_net(PROTOTXT / "mini" / prototxt, MINI / weights)  # checked against the definition
    blob, labels = fresh
    assert solvers.accuracy(net, blob, labels, batch=50) >= 0.95


def test_shipped_labels_bounds_and_sizes(fresh):
    assert (MINI / "labels.txt").read_text().splitlines() == list(data.CLASSES)
    bounds = read_bounds(MINI / "fc6_bounds.txt", netspecs.CODE_SIZE)
    assert (MINI / "fc6_bounds.txt").read_text().count("\n") == 1
    net, _ = cb.load_net(PROTOTXT / "mini" / "encoder.prototxt", MINI / "encoder.caffemodel")
    fc6 = solvers.forward_all(net, fresh[0], "fc6", batch=50)
    # mean + BOUNDS_K std over the train split: on fresh images, about that per unit again
    expected = fc6.mean(axis=0) + train.BOUNDS_K * fc6.std(axis=0)
    assert bounds.max() > 0 and np.mean(fc6 > bounds) < 0.2
    assert np.corrcoef(bounds, expected)[0, 1] > 0.95
    assert sum((MINI / f).stat().st_size for _, f in NETS.values()) < 6e6
