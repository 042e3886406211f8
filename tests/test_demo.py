"""``dgn-am demo``'s input checks and the evaluation metrics it reports.

No generator is shipped yet (the miniature G does not reach the demo's thresholds; see README), so the
end-to-end run on committed weights is not tested here: only that the demo names the missing file, and
the metrics on hand-made numbers.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from dgn_am.mini import evaluate

from .conftest import ROOT


def test_demo_names_missing_model_files(tmp_path):
    env_nets = tmp_path / "nets"
    (env_nets / "mini").mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-m", "dgn_am.cli", "demo", "--output_dir", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=ROOT, check=False,
                          env=dict(os.environ, DGN_AM_NETS=str(env_nets), GLOG_minloglevel="2"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "generator.caffemodel" in lines[0] and "dgn_am.mini.train all" in lines[0]


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
