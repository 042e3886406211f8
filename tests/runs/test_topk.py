"""``dgn-am topk``: each unit's strongest images against the net run directly, resuming, conv units, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dgn_am.common.errors import InputError
from dgn_am.mini import data
from dgn_am.runs import topk

from ..conftest import run_cli
from .mini_outputs import ENCODER, WEIGHTS, encoder_blob
from .mini_outputs import LABELS as ROOT_LABELS

PER_CLASS = 12


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("heldout")
    data.export(d, "heldout", PER_CLASS)
    return d


def _direct(layer: str) -> np.ndarray:
    return encoder_blob(layer, PER_CLASS)


def test_fc8_top_images_are_the_nets_and_of_the_units_class(exported, tmp_path):
    result = topk.find(ENCODER, WEIGHTS, "fc8", list(range(10)), 5, exported, "128", tmp_path, batch=16)
    fc8 = _direct("fc8")
    names = sorted(p.relative_to(exported).as_posix() for p in exported.rglob("*.png"))  # the order find reads
    index = {n: int(n.split("/")[1][:5]) for n in names}   # file NNNNN.png is split image NNNNN
    right = 0
    for u in range(10):
        got = [(index[Path(p).relative_to(exported).as_posix()], a) for p, a, _ in result.tops[u]]
        want = np.argsort(-fc8[:, u], kind="stable")[:5]
        assert [g for g, _ in got] == want.tolist()
        assert np.allclose([a for _, a in got], fc8[want, u], rtol=1e-6)
        right += sum(g // PER_CLASS == u for g, _ in got)
    assert right >= 0.9 * 50   # the trained encoder's top images are of the unit's own class
    saved = json.loads((tmp_path / "topk.json").read_text())
    assert set(saved) == {str(u) for u in range(10)} and all(len(v) == 5 for v in saved.values())
    assert all((tmp_path / f"fc8_{u:04d}.jpg").is_file() for u in range(10))
    manifest = json.loads((tmp_path / "topk.manifest.json").read_text())
    assert manifest["n_images"] == 10 * PER_CLASS and len(manifest["file_list_sha256"]) == 64


def test_a_killed_run_goes_on_where_it_stopped(exported, tmp_path):
    whole = topk.find(ENCODER, WEIGHTS, "fc8", [3, 7], 4, exported, "128", tmp_path / "whole", batch=10)

    class Killed(Exception):
        pass

    def kill(done: int, total: int) -> None:
        if done >= 50:
            raise Killed

    with pytest.raises(Killed):
        topk.find(ENCODER, WEIGHTS, "fc8", [3, 7], 4, exported, "128", tmp_path / "part", batch=10, progress=kill)
    state = json.loads((tmp_path / "part" / topk.STATE).read_text())
    assert state["next"] == 50
    again = topk.find(ENCODER, WEIGHTS, "fc8", [3, 7], 4, exported, "128", tmp_path / "part", batch=10)
    assert again.resumed_at == 50 and again.tops == whole.tops
    other = topk.find(ENCODER, WEIGHTS, "fc8", [3, 7], 2, exported, "128", tmp_path / "part", batch=10)
    assert other.resumed_at == 0   # other settings: the state is not this run's


def test_conv_units_take_their_best_position_and_its_receptive_field(exported, tmp_path):
    result = topk.find(ENCODER, WEIGHTS, "conv2", [0, 5], 3, exported, "128", tmp_path)
    conv2 = _direct("conv2")
    best = conv2[:, 5].reshape(len(conv2), -1).max(1)
    assert np.allclose(sorted((a for _, a, _ in result.tops[5]), reverse=True), np.sort(best)[::-1][:3], rtol=1e-6)
    assert all(xy is not None for _, _, xy in result.tops[5])
    at = topk.find(ENCODER, WEIGHTS, "conv2", [5], 3, exported, "128", tmp_path / "at", xy=4)
    assert all(xy == (4, 4) for _, _, xy in at.tops[5])
    assert np.allclose(sorted((a for _, a, _ in at.tops[5]), reverse=True), np.sort(conv2[:, 5, 4, 4])[::-1][:3],
                       rtol=1e-6)


def test_unreadable_images_are_skipped_and_bad_input_is_one_line(exported, tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for name in ("00000.png", "00001.png"):
        (mixed / name).write_bytes((exported / "disc" / name).read_bytes())
    (mixed / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    result = topk.find(ENCODER, WEIGHTS, "fc8", [0], 9, mixed, "128", tmp_path / "o")
    assert len(result.tops[0]) == 2 and [Path(p).name for p, _ in result.skipped] == ["broken.jpg"]
    for kwargs, match in (({"units": [10]}, "out of range"), ({"xy": 1}, "not spatial"), ({"k": 0}, "at least 1")):
        args = {"units": [0], "k": 3, **kwargs}
        with pytest.raises(InputError, match=match):
            topk.find(ENCODER, WEIGHTS, "fc8", args["units"], args["k"], mixed, "128", tmp_path / "bad",
                      xy=kwargs.get("xy"))
    assert not (tmp_path / "bad").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli("topk", "--net_definition", str(ENCODER), "--net_weights", str(WEIGHTS), "--units", "0",
                   "--images", str(empty), "--mean", "128", "--output_dir", str(tmp_path / "o2"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr


def test_gpu_on_a_cpu_only_build_is_one_line_before_any_file(exported, tmp_path):
    from dgn_am import backend as cb

    if cb.build_info().get("cuda"):
        pytest.fail("this test expects the CPU-only build that scripts/install_caffe.sh makes by default")
    labels = str(ROOT_LABELS)
    common = ["--net_definition", str(ENCODER), "--net_weights", str(WEIGHTS), "--images", str(exported),
              "--mean", "128", "--gpu", "0"]
    for command, extra in (("topk", ["--units", "0"]), ("accuracy", ["--labels", labels]),
                           ("neighbors", ["--labels", labels, "--results", str(exported)])):
        out = tmp_path / command
        proc = run_cli(command, *common, *extra, "--output_dir", str(out))
        if command == "neighbors":   # no results in that folder: refused even earlier, still one line
            assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        else:
            assert proc.returncode == 2 and "CPU-only" in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
        assert not out.exists()
