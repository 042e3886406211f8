"""``--labels FILE``: unit names in the bar and summary, the manifest's ``label``, galleries and montages."""

from __future__ import annotations

import json

import pytest

from dgn_am.assets.labels import MAX_LABELS, label_of, read_labels
from dgn_am.common.errors import InputError

from ..conftest import run_cli
from .test_wrong_results import STEM, mini_args


def test_read_labels_one_name_per_line(tmp_path, monkeypatch):
    path = tmp_path / "names.txt"
    path.write_text("zero\n\n  two words \nthree\n")
    labels = read_labels(path)
    assert labels == {0: "zero", 2: "two words", 3: "three"}
    assert label_of(labels, 2) == "two words" and label_of(labels, 1) == "unit 1" and label_of(None, 5) == "unit 5"
    monkeypatch.setattr("dgn_am.assets.labels.MAX_LABELS", 2)
    with pytest.raises(InputError, match="names at most 2 units"):
        read_labels(path)
    assert MAX_LABELS >= 1000  # a 1000-class list is fine by default
    with pytest.raises(InputError, match="labels file"):
        read_labels(tmp_path / "absent.txt")


def test_synthesize_records_the_label_and_the_gallery_shows_it(tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"class number {k}" for k in range(10)) + "\n")
    out = tmp_path / "out"
    proc = run_cli(*mini_args(out, "--labels", str(names)))
    assert proc.returncode == 0, proc.stderr
    assert "unit 3 (class number 3) of fc8" in proc.stdout
    record = json.loads((out / f"{STEM}.json").read_text())
    assert record["label"] == "class number 3" and "label" not in record["parameters"]
    # the same run named differently is the same run: not refused, not a different result
    other = tmp_path / "other.txt"
    other.write_text("a\nb\nc\nrenamed\n")
    again = run_cli(*mini_args(out, "--labels", str(other)))
    assert again.returncode == 0, again.stderr
    assert json.loads((out / f"{STEM}.json").read_text())["label"] == "renamed"
    # a sweep's gallery over that folder uses its own --labels first, else each manifest's label
    gallery = run_cli("sweep", "--units", "3", "--output_dir", str(out), "--gallery-only")
    assert gallery.returncode == 0, gallery.stderr
    assert "3: renamed" in (out / "index.html").read_text()
    gallery = run_cli("sweep", "--units", "3", "--output_dir", str(out), "--gallery-only", "--labels", str(names))
    assert gallery.returncode == 0, gallery.stderr
    assert "3: class number 3" in (out / "index.html").read_text()


def test_a_bad_labels_file_is_one_line_and_nothing_is_written(tmp_path):
    out = tmp_path / "out"
    folder = tmp_path / "names"
    folder.mkdir()
    proc = run_cli(*mini_args(out, "--labels", str(folder)))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "labels file" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.iterdir())
