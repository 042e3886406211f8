"""The Python API: the README's first Python block runs as written, and its results are the CLI's, bit for bit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dgn_am
from dgn_am.common.errors import InputError

from .conftest import ROOT, run_cli


def _first_python_block() -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    assert found, "README.md has no ```python block"
    return found.group(1)


def test_readme_first_python_block_runs_as_written(tmp_path):
    env = dict(os.environ, GLOG_minloglevel="2")
    proc = subprocess.run([sys.executable, "-c", _first_python_block()], cwd=tmp_path, capture_output=True,
                          text=True, env=env, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    names = [line.split()[0] for line in lines[:3]]
    classes = (ROOT / "nets" / "mini" / "labels.txt").read_text().split()
    assert names == [classes[0], classes[3], classes[9]]  # the class names, from the model's labels
    assert all("image (64, 64, 3)" in line for line in lines[:3])
    png = Path(lines[3])
    assert (tmp_path / png).is_file() and png.parts[:2] == ("output", "api")
    record = json.loads((tmp_path / png).with_suffix(".json").read_text())
    assert record["label"] == classes[0] and record["parameters"]["n_iters"] == 50


@pytest.fixture(scope="module")
def mini() -> dgn_am.DGNAM:
    return dgn_am.DGNAM.mini()


def test_api_results_are_the_cli_bits(mini, tmp_path):
    preset = dgn_am.presets()["mini"]
    [result] = mini.synthesize([4], seeds=[2], n_iters=12)
    out = tmp_path / "cli"
    proc = run_cli("synthesize", "--unit", "4", "--seed", "2", "--n_iters", "12", "--L2", repr(preset.L2),
                   "--start_lr", repr(preset.start_lr), "--end_lr", repr(preset.end_lr), "--bound", str(preset.bound),
                   "--net_definition", str(ROOT / "prototxt/mini/encoder.prototxt"),
                   "--net_weights", str(ROOT / "nets/mini/encoder.caffemodel"),
                   "--generator_definition", str(ROOT / "prototxt/mini/generator.prototxt"),
                   "--generator_weights", str(ROOT / "nets/mini/generator.caffemodel"),
                   "--output_dir", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    [npz] = out.glob("*.npz")
    with np.load(npz) as saved:
        np.testing.assert_array_equal(saved["code"], result.code.astype(np.float32))
        np.testing.assert_array_equal(saved["image"], result.image.astype(np.float32))
        np.testing.assert_array_equal(saved["activations"], result.activations)
    # and saving the in-memory result writes the same bytes under the same name
    [outcome] = mini.save([result], tmp_path / "api")
    assert outcome.paths["npz"].name == npz.name
    assert outcome.paths["npz"].read_bytes() == npz.read_bytes()
    assert outcome.paths["png"].read_bytes() == npz.with_suffix(".png").read_bytes()


def test_api_batches_and_seeds(mini):
    alone = mini.synthesize([1, 2], seeds=[0, 1], n_iters=3)
    assert [(r.run.unit, r.run.seed) for r in alone] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    together = mini.synthesize([1, 2], seeds=[0, 1], n_iters=3, batch=4)
    assert [r.batch["size"] for r in together] == [4] * 4 and [r.batch["size"] for r in alone] == [1] * 4
    for a, b in zip(alone, together, strict=True):  # the first iteration agrees to float32 rounding
        assert abs(a.activations[0] - b.activations[0]) <= 1e-4 * max(1.0, abs(a.activations[0]))


def test_api_refuses_bad_input_before_running(mini):
    with pytest.raises(InputError, match="unit"):
        mini.synthesize([10])  # E's fc8 has 10 units: 0..9
    with pytest.raises(InputError, match="n_iters"):
        mini.synthesize([0], n_iters=0)
    with pytest.raises(InputError, match="no units"):
        mini.synthesize([])
    with pytest.raises(InputError, match="missing model files"):
        dgn_am.DGNAM(dgn_am.default_models(net_weights=Path("/nonexistent/net.caffemodel")), dgn_am.presets()["mini"])
