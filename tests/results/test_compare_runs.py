"""``dgn-am compare --runs A B``: two result folders paired by their manifests' settings, image by image."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from ..cli.test_wrong_results import mini_args
from ..conftest import run_cli


def _make(folder, unit: int, n_iters: int = 3) -> None:
    proc = run_cli(*mini_args(folder, unit=unit, n_iters=n_iters))
    assert proc.returncode == 0, proc.stderr


def test_the_same_runs_pass_and_a_doctored_image_fails_by_name(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        _make(folder, 1)
        _make(folder, 4)
    same = run_cli("compare", str(a), str(b), "--runs")
    assert same.returncode == 0, same.stdout + same.stderr
    assert "PASS" in same.stdout and "(2 pairs)" in same.stdout
    report = json.loads((a / "runs.compare.json").read_text())
    assert [p["verdict"] for p in report["pairs"]] == ["pass", "pass"] and report["pairs"][0]["psnr"] is None
    png = next(b.glob("fc8_0004_*.png"))
    Image.fromarray(np.asarray(Image.open(png))[:, ::-1].copy()).save(png)
    proc = run_cli("compare", str(a), str(b), "--runs", "--json", str(tmp_path / "r.json"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert json.loads((tmp_path / "r.json").read_text())["failures"] == [png.with_suffix(".json").name]


def test_runs_are_paired_by_settings_not_names(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _make(a, 1)
    _make(b, 1, n_iters=4)  # another setting: no partner on either side
    proc = run_cli("compare", str(a), str(b), "--runs")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"only in {a}: fc8_0001_03" in proc.stdout and f"only in {b}: fc8_0001_04" in proc.stdout
    empty = run_cli("compare", str(tmp_path / "x"), str(tmp_path / "y"), "--runs")
    assert empty.returncode == 2 and "is not a folder of results" in empty.stderr
