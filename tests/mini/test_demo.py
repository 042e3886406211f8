"""``dgn-am demo``: the end-to-end run on the committed miniature model, its input checks, and the
evaluation metrics it reports."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dgn_am.mini import evaluate
from dgn_am.mini.demo import DemoSettings
from dgn_am.results.outputs import result_stem

from ..conftest import ROOT

CLASSES = 10


def run_demo(*args: str, nets: Path | None = None) -> subprocess.CompletedProcess:
    """``dgn-am demo --quiet ARGS``; ``nets`` sets DGN_AM_NETS."""
    env = dict(os.environ, GLOG_minloglevel="2")
    if nets is not None:
        env["DGN_AM_NETS"] = str(nets)
    return subprocess.run([sys.executable, "-m", "dgn_am.cli", "demo", "--quiet", *args],
                          capture_output=True, text=True, cwd=ROOT, check=False, env=env)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("demo")
    return run_demo("--evaluate", "--output_dir", str(out)), out


def test_demo_evaluate_meets_the_threshold_on_the_committed_model(demo_run):
    proc, _ = demo_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = re.search(r"independent classifier: (\d+)% \((\d+)/(\d+)\)", proc.stdout)
    assert found, proc.stdout
    share, hits, total = map(int, found.groups())
    assert total == CLASSES and hits >= 0.8 * total and share == round(100 * hits / total)
    assert proc.stdout.rstrip().endswith("PASS")


def test_demo_reports_every_class_against_real_images(demo_run):
    proc, _ = demo_run
    labels = (ROOT / "nets" / "mini" / "labels.txt").read_text().split()
    table = proc.stdout.split("classifier says")[1]
    rows = {words[0]: words for words in map(str.split, table.splitlines()[1:]) if words and words[0] in labels}
    assert sorted(rows) == sorted(labels)
    for label, row in rows.items():
        synthetic, median, ratio = map(float, row[1:4])
        assert median > 0, label  # every class drives its own unit on real images
        assert ratio == pytest.approx(synthetic / median, abs=0.006)
    assert "held-out images; median ratio" in proc.stdout


def test_demo_writes_montage_gallery_and_one_result_per_class(demo_run):
    from PIL import Image

    _, out = demo_run
    with Image.open(out / "montage.png") as im:
        assert im.width >= 5 * 128 and im.height >= 2 * 128
    s = DemoSettings()
    names = [result_stem("fc8", k, s.n_iters, s.L2, s.start_lr, s.seed) + ".png" for k in range(CLASSES)]
    assert sorted(p.name for p in out.glob("fc8_*.png")) == names
    page = (out / "index.html").read_text()
    assert all(name in page for name in names)
    classes = (ROOT / "nets" / "mini" / "labels.txt").read_text().split()
    assert all(f">{k}: {c}<" in page for k, c in enumerate(classes)) and "unit 0" not in page  # class names


def test_demo_below_the_threshold_fails(tmp_path):
    proc = run_demo("--evaluate", "--n_iters", "1", "--output_dir", str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    found = re.search(r"independent classifier: (\d+)% \((\d+)/10\)", proc.stdout)
    assert found and int(found.group(2)) < 8
    assert "FAIL: below the threshold" in proc.stdout


def test_demo_names_missing_model_files(tmp_path):
    (tmp_path / "mini").mkdir()
    proc = run_demo("--output_dir", str(tmp_path / "o"), "--model_dir", str(tmp_path / "mini"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "generator.caffemodel" in lines[0]
    assert f"dgn_am.mini.train all --out_dir {tmp_path / 'mini'}" in lines[0]
    assert not (tmp_path / "o").exists()  # checked before anything is written


def test_demo_ignores_dgn_am_nets(tmp_path):
    # The miniature files are committed with the code: a DGN_AM_NETS of downloaded models (Docker's
    # /models) does not hide them.
    proc = run_demo("--n_iters", "1", "--output_dir", str(tmp_path / "o"), nets=tmp_path / "elsewhere")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o" / "montage.png").is_file()


def test_share_recognized_counts_argmax_hits():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.1, 0.4], [0.2, 0.2, 0.6]])
    assert evaluate.share_recognized(probs, np.array([0, 1, 2, 2])) == 0.75
    with pytest.raises(ValueError):
        evaluate.share_recognized(np.zeros((0, 3)), np.array([], dtype=int))


def test_real_medians_use_each_class_own_unit():
    acts = np.array([[1.0, 9.0], [3.0, 9.0], [2.0, 9.0], [9.0, 4.0], [9.0, 6.0]])
    labels = np.array([0, 0, 0, 1, 1])
    np.testing.assert_allclose(evaluate.real_medians(acts, labels, 3), [2.0, 5.0, np.nan])


def test_class_rows_and_ratio():
    names = ["a", "b"]
    rows = evaluate.class_rows([0, 1], names, np.array([4.0, 1.0]), np.array([2.0, 4.0]),
                               np.array([[0.9, 0.1], [0.7, 0.3]]))
    assert [(r.label, r.predicted, r.recognized) for r in rows] == [("a", "a", True), ("b", "a", False)]
    assert [r.ratio for r in rows] == [2.0, 0.25]
    assert rows[1].probability == pytest.approx(0.3)
    assert evaluate.median_ratio(rows) == pytest.approx(1.125)
