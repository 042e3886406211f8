"""``dgn-am figure NAME --images DIR``: the real halves, on the miniature model's nets and exported data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from dgn_am.mini import data

from ..conftest import PROTOTXT, ROOT

MINI = ["--net_definition", str(PROTOTXT / "mini" / "encoder.prototxt"),
        "--net_weights", str(ROOT / "nets" / "mini" / "encoder.caffemodel"),
        "--generator_definition", str(PROTOTXT / "mini" / "generator.prototxt"),
        "--generator_weights", str(ROOT / "nets" / "mini" / "generator.caffemodel")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path]:
    """A nets folder whose 3x fc6 bound is the miniature code's (256 values), and an exported held-out set."""
    nets = tmp_path_factory.mktemp("nets")
    (nets / "released" / "act_range" / "3x").mkdir(parents=True)
    shutil.copy(ROOT / "nets" / "mini" / "fc6_bounds.txt", nets / "released" / "act_range" / "3x" / "fc6.txt")
    images = tmp_path_factory.mktemp("heldout")
    data.export(images, "heldout", 10)
    return nets, images


def _figure(nets: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DGN_AM_NETS=str(nets), GLOG_minloglevel="2")
    return subprocess.run([sys.executable, "-m", "dgn_am.cli", "figure", *args, *MINI, "--quiet"],
                          capture_output=True, text=True, env=env, check=False)


def test_fig5_with_images_writes_the_side_by_side_montages(setup, tmp_path):
    nets, images = setup
    proc = _figure(nets, "fig5", "--units", "0,3", "--n_iters", "2", "--batch", "9", "--images", str(images),
                   "--mean", "128", "--output_dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "fig5"
    record = json.loads((folder / "fig5.json").read_text())
    real = record["real"]
    assert real["k"] == 9 and real["side_by_side"] == ["fig5_0000_side.jpg", "fig5_0003_side.jpg"]
    top = json.loads((folder / real["topk"]).read_text())
    for unit, name in ((0, "disc"), (3, "star")):   # the trained encoder's strongest images are its class's
        assert sum(Path(p).parent.name == name for p, _ in top[str(unit)]) >= 8
    with Image.open(folder / "fig5_0000.jpg") as synthetic, Image.open(folder / "fig5_0000_side.jpg") as side:
        assert side.size[0] > 2 * synthetic.size[0] - 1 and side.size[1] >= synthetic.size[1]
    assert "real half" in proc.stdout


def test_without_images_the_record_says_what_was_left_out_and_bad_input_is_one_line(setup, tmp_path):
    nets, images = setup
    proc = _figure(nets, "fig5", "--units", "1", "--n_iters", "2", "--batch", "9", "--output_dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "fig5" / "fig5.json").read_text())["real"].startswith("left out: no --images")
    for args, message in ((("s18", "--images", str(images)), "s18 has no real-image half"),
                          (("s10", "--images", str(images)), "needs --labels"),
                          (("fig5", "--images", str(tmp_path / "nowhere")), "does not exist"),
                          (("fig5", "--images", str(images), "--mean", "grey"), "--mean must be")):
        bad = _figure(nets, *args, "--units", "1", "--n_iters", "2", "--output_dir", str(tmp_path / "bad"))
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and message in bad.stderr, bad.stderr
    assert not (tmp_path / "bad").exists()
