"""``dgn-am accuracy`` and the miniature image-set export: counts against the net run directly, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dgn_am.common.errors import InputError
from dgn_am.mini import data
from dgn_am.runs import accuracy

from ..conftest import run_cli
from .mini_outputs import ENCODER, LABELS, WEIGHTS, encoder_blob

PER_CLASS = 6


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("heldout")
    assert data.export(d, "heldout", PER_CLASS) == PER_CLASS * len(data.CLASSES)
    return d


def test_export_writes_a_folder_per_class_named_by_the_labels_file(exported):
    assert sorted(p.name for p in exported.iterdir()) == sorted(LABELS.read_text().split())
    images, labels = data.make_split("heldout", PER_CLASS, data.DATA_SEED)
    for i in (0, PER_CLASS * 3 + 2, len(images) - 1):   # the PNGs are the split's pixels, losslessly
        path = exported / data.CLASSES[labels[i]] / f"{i:05d}.png"
        with Image.open(path) as im:
            assert np.array_equal(np.asarray(im.convert("RGB")), images[i])


def test_export_command_and_its_bad_input(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dgn_am.mini.data", "export", str(tmp_path / "x"), "--per_class",
                           "1"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "wrote 10 images" in proc.stdout, proc.stderr
    assert len(list((tmp_path / "x").glob("*/*.png"))) == 10
    for bad in (["--per_class", "0"], ["--split", "test"]):
        proc = subprocess.run([sys.executable, "-m", "dgn_am.mini.data", "export", str(tmp_path / "y"), *bad],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "y").exists()


def _direct(per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 and top-5 hits per image, from the split's pixels straight into the net (no files)."""
    _, labels = data.make_split("heldout", per_class, data.DATA_SEED)
    order = np.argsort(-encoder_blob("fc8", per_class), axis=1, kind="stable")
    return order[:, 0] == labels, (order[:, :5] == labels[:, None]).any(1)


def test_accuracy_counts_what_the_net_says(exported, tmp_path):
    result = accuracy.measure(ENCODER, WEIGHTS, "fc8", exported, LABELS, "128", tmp_path / "out", batch=7)
    top1, top5 = _direct(PER_CLASS)
    assert sum(result.total.values()) == len(top1) and not result.skipped
    assert result.overall(1) == pytest.approx(top1.mean()) and result.overall(5) == pytest.approx(top5.mean())
    for k, name in enumerate(data.CLASSES):
        assert result.hits[1][k] == int(top1[k * PER_CLASS : (k + 1) * PER_CLASS].sum()), name
    report = json.loads((tmp_path / "out" / "accuracy.json").read_text())
    assert report["images"] == len(top1) and report["top1"] == pytest.approx(top1.mean())
    assert len(report["measured"]["file_list_sha256"]) == 64
    rows = (tmp_path / "out" / "accuracy.csv").read_text().splitlines()
    assert rows[0] == "class,name,images,top1,top5" and len(rows) == 1 + len(data.CLASSES)


def test_unreadable_images_are_listed_and_skipped_and_a_label_file_works(exported, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    lines = []
    for k, name in enumerate(data.CLASSES[:3]):
        src = exported / name / f"{k * PER_CLASS:05d}.png"
        (flat / f"{k}.png").write_bytes(src.read_bytes())
        lines.append(f"{k}.png {name if k % 2 else k}")   # a label is a class name or an index
    (flat / "broken.png").write_bytes(b"not a png")
    lines.append("broken.png 0")
    (tmp_path / "labels.txt").write_text("\n".join(lines) + "\n")
    result = accuracy.measure(ENCODER, WEIGHTS, "fc8", flat, LABELS, "128", tmp_path / "out",
                              label_file=tmp_path / "labels.txt")
    assert sum(result.total.values()) == 3 and [Path(p).name for p, _ in result.skipped] == ["broken.png"]
    assert json.loads((tmp_path / "out" / "accuracy.json").read_text())["skipped"][0]["path"].endswith("broken.png")


def test_bad_input_is_one_line_before_any_file(exported, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no class folders"):
        accuracy.measure(ENCODER, WEIGHTS, "fc8", empty, LABELS, "128", tmp_path / "o1")
    odd = tmp_path / "odd"
    (odd / "unicorn").mkdir(parents=True)
    with pytest.raises(InputError, match="'unicorn'.*not a class"):
        accuracy.measure(ENCODER, WEIGHTS, "fc8", odd, LABELS, "128", tmp_path / "o2")
    many = tmp_path / "many.txt"
    many.write_text("\n".join(f"c{i}" for i in range(11)) + "\n")   # 11 classes, fc8 has 10
    (tmp_path / "m" / "c0").mkdir(parents=True)
    (tmp_path / "m" / "c0" / "a.png").write_bytes((exported / "disc" / "00000.png").read_bytes())
    with pytest.raises(InputError, match="has 10 units"):
        accuracy.measure(ENCODER, WEIGHTS, "fc8", tmp_path / "m", many, "128", tmp_path / "o3")
    assert not any((tmp_path / f"o{i}" / "accuracy.json").exists() for i in (1, 2, 3))
    proc = run_cli("accuracy", "--net_definition", str(ENCODER), "--net_weights", str(WEIGHTS), "--images",
                   str(empty), "--labels", str(LABELS), "--mean", "128", "--output_dir", str(tmp_path / "o4"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
