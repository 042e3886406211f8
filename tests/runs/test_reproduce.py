"""``dgn-am reproduce``: the released settings, dry runs, montages on made weights, and model checks."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dgn_am.runs.releases import RELEASES, labels_for

from ..conftest import run_cli


def test_release_table_matches_facts():
    assert [r.name for r in RELEASES.values()] == [f"example{i}" for i in range(1, 6)]
    e1, e2, e3, e4, e5 = RELEASES.values()
    assert e1.units == (643, 624, 304, 629, 437) and e1.n_iters == 200 and e1.start_lr == 8.0
    assert e2.net == "places205" and e2.units == (2, 7, 8, 12, 71)
    assert e3.units == (945,) and e3.n_iters == 30 and e3.start_lr == 1.0 and e3.init_file == "images/red_pepper.jpg"
    assert e4.act_layer == "conv5" and e4.xy == 6 and e4.units == (8, 55, 154, 181, 45)
    assert e5.act_layer == "loss3/classifier" and e5.start_lr == 2.0
    for release in RELEASES.values():
        for run in release.runs(__import__("pathlib").Path("out")):
            assert (run.L2, run.end_lr, run.seed, run.clip, run.opt_layer) == (0.99, 1e-10, 0, False, "fc6")
            assert str(run.bound).endswith("act_range/3x/fc6.txt")


def test_dry_run_prints_every_panel():
    proc = run_cli("reproduce", "all", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("dgn-am synthesize")]
    assert len(lines) == 5 + 5 + 1 + 5 + 5
    e4 = [ln for ln in lines if "--act_layer conv5" in ln]
    assert len(e4) == 5 and all("--xy 6" in ln and "places205_alexnet.prototxt" in ln for ln in e4)
    e3 = [ln for ln in lines if "red_pepper.jpg" in ln]
    assert len(e3) == 1 and "--n_iters 30" in e3[0] and "--start_lr 1.0" in e3[0] and "--debug 1" in e3[0]
    assert all("--L2 0.99" in ln and "--end_lr 1e-10" in ln and "--seed 0" in ln for ln in lines)
    assert "--act_layer loss3/classifier" in proc.stdout and "googlenet.prototxt" in proc.stdout


def test_unknown_example_is_one_line():
    proc = run_cli("reproduce", "example9", "--dry-run")
    assert proc.returncode == 2 and proc.stderr.strip().startswith("dgn-am: error: unknown example 'example9'")


@pytest.fixture(scope="module")
def fake_nets(models, tmp_path_factory):
    """A nets/ folder laid out as `dgn-am download` leaves it, holding the made (random) weights."""
    nets = tmp_path_factory.mktemp("nets")
    (nets / "caffenet").mkdir()
    (nets / "generators" / "fc6").mkdir(parents=True)
    os.symlink(models.caffenet, nets / "caffenet" / "bvlc_reference_caffenet.caffemodel")
    os.symlink(models.generator, nets / "generators" / "fc6" / "generator.caffemodel")
    rel = nets / "released"
    (rel / "act_range" / "3x").mkdir(parents=True)
    (rel / "act_range" / "3x" / "fc6.txt").write_text(" ".join(["12"] * 4096) + "\n")
    (rel / "misc").mkdir()
    (rel / "misc" / "synset_words.txt").write_text("".join(f"n{i:08d} class{i}, other\n" for i in range(1000)))
    (rel / "images").mkdir()
    Image.fromarray(np.full((60, 50, 3), 200, dtype=np.uint8)).save(rel / "images" / "red_pepper.jpg")
    return nets


def _reproduce(nets, *args):
    env = dict(os.environ, DGN_AM_NETS=str(nets), GLOG_minloglevel="2")
    return subprocess.run([sys.executable, "-m", "dgn_am.cli", "reproduce", *args], capture_output=True, text=True,
                          env=env, check=False)


def test_example1_montage_on_made_weights(fake_nets, tmp_path):
    proc = _reproduce(fake_nets, "example1", "--output_dir", str(tmp_path), "--n_iters", "1")
    assert proc.returncode == 0, proc.stderr
    montage = Image.open(tmp_path / "example1.jpg")
    assert montage.size == (1145, 269)
    record = json.loads((tmp_path / "example1.json").read_text())
    assert [p["unit"] for p in record["panels"]] == [643, 624, 304, 629, 437]
    assert record["panels"][0]["label"] == "class643"
    assert record["reproduction"] is False  # made weights and a shortened run are no reproduction
    assert "NOT a reproduction" in proc.stdout and "class643" in proc.stdout
    assert len(list((tmp_path / "example1").glob("*.npz"))) == 5


def test_example1_batched_makes_the_same_panels_in_one_pass(fake_nets, tmp_path):
    alone, together = tmp_path / "alone", tmp_path / "together"
    assert _reproduce(fake_nets, "example1", "--output_dir", str(alone), "--n_iters", "2").returncode == 0
    proc = _reproduce(fake_nets, "example1", "--output_dir", str(together), "--n_iters", "2", "--batch", "5")
    assert proc.returncode == 0, proc.stderr
    one = json.loads((alone / "example1.json").read_text())
    five = json.loads((together / "example1.json").read_text())
    assert [p["unit"] for p in five["panels"]] == [p["unit"] for p in one["panels"]]
    # Batched convolutions sum in another order, and a flipped max-pooling window moves a first step by up to
    # 2 % (tests/test_batching.py); two steps of lr 8 stay within 5 %.
    for a, b in zip(one["panels"], five["panels"], strict=True):
        assert abs(a["final_activation"] - b["final_activation"]) <= 5e-2 * max(abs(a["final_activation"]), 1.0)
    records = [json.loads(p.read_text()) for p in sorted((together / "example1").glob("*.json"))]
    assert sorted(r["batch"]["position"] for r in records) == [0, 1, 2, 3, 4]
    assert {r["batch"]["size"] for r in records} == {5}
    assert {r["batch"]["convolution"] for r in records} == {"oneDNN"}


def test_example3_grid_of_every_iteration(fake_nets, tmp_path):
    proc = _reproduce(fake_nets, "example3", "--output_dir", str(tmp_path), "--n_iters", "3")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "example3.json").read_text())
    assert len(record["trajectory"]) == 3
    z = np.load(next((tmp_path / "example3").glob("*.npz")))
    np.testing.assert_allclose(record["trajectory"], z["activations"])


def test_reproduce_offline_names_missing_files(tmp_path):
    proc = _reproduce(tmp_path / "empty", "example2", "--output_dir", str(tmp_path))
    assert proc.returncode == 2
    assert "places205CNN_iter_300000.caffemodel" in proc.stderr and proc.stderr.count("\n") == 1


def test_model_check_against_published_and_recorded_hashes(tmp_path, monkeypatch):
    from dgn_am.runs import reproduce

    monkeypatch.setenv("DGN_AM_NETS", str(tmp_path))
    (tmp_path / "caffenet").mkdir()
    fake = tmp_path / "caffenet" / "bvlc_reference_caffenet.caffemodel"
    fake.write_bytes(b"not the released caffenet")
    check = reproduce.check_weights(fake)
    assert check.verdict == "differs" and "4c8d77deb20e" in check.detail
    gen = tmp_path / "generators" / "fc6" / "generator.caffemodel"
    gen.parent.mkdir(parents=True)
    gen.write_bytes(b"generator bytes")
    assert reproduce.check_weights(gen).verdict == "unverified"
    digest = hashlib.sha256(b"generator bytes").hexdigest()
    (tmp_path / "manifest.json").write_text(json.dumps({"generators/fc6/generator.caffemodel": digest}))
    assert reproduce.check_weights(gen).verdict == "released"
    gen.write_bytes(b"tampered")
    assert reproduce.check_weights(gen).verdict == "differs"


def test_labels_from_the_downloaded_lists(tmp_path, monkeypatch):
    monkeypatch.setenv("DGN_AM_NETS", str(tmp_path))
    (tmp_path / "released" / "misc").mkdir(parents=True)
    (tmp_path / "released" / "misc" / "categoryIndex_places205.txt").write_text("alley 2\ndoorway/outdoor 71\n")
    (tmp_path / "released" / "misc" / "synset_words.txt").write_text("n0 tench, Tinca tinca\nn1 goldfish\n")
    assert labels_for(RELEASES["example2"]) == {2: "alley", 71: "doorway/outdoor"}
    assert labels_for(RELEASES["example1"]) == {0: "tench", 1: "goldfish"}
    shutil.rmtree(tmp_path / "released")
    assert labels_for(RELEASES["example1"]) == {}


def test_reproduce_resumes_like_a_sweep(fake_nets, tmp_path):
    first = _reproduce(fake_nets, "example1", "example3", "--output_dir", str(tmp_path), "--n_iters", "2", "--quiet")
    assert first.returncode == 0, first.stderr
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.suffix in (".npz", ".png", ".json")
              and p.parent != tmp_path}
    montage3 = (tmp_path / "example3.jpg").read_bytes()
    again = _reproduce(fake_nets, "example1", "example3", "--output_dir", str(tmp_path), "--n_iters", "2", "--quiet")
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # no panel was made again
    assert (tmp_path / "example3.jpg").read_bytes() == montage3  # rebuilt from the kept frames, the same
    assert again.stdout.split("example1:")[1].split("\n", 1)[1].split("is NOT")[0] == \
        first.stdout.split("example1:")[1].split("\n", 1)[1].split("is NOT")[0]  # same table


def test_shortened_compare_compares_what_it_can_and_goes_on(fake_nets, tmp_path):
    from dgn_am.results import montage

    examples = fake_nets / "released" / "examples"
    examples.mkdir(exist_ok=True)
    for name in ("example1", "example3"):
        size = montage.RELEASED_GEOMETRY[name].size
        Image.fromarray(np.full((size[1], size[0], 3), 255, dtype=np.uint8)).save(examples / f"{name}.jpg")
    try:
        proc = _reproduce(fake_nets, "example3", "example1", "--output_dir", str(tmp_path), "--n_iters", "3",
                          "--compare", "--quiet")
        # the same comparison on its own: the iterations come from the montage's record beside it
        alone = run_cli("compare", str(tmp_path / "example3.jpg"), str(examples / "example3.jpg"),
                        "--json", str(tmp_path / "alone.json"))
    finally:
        shutil.rmtree(examples)
    assert proc.returncode == 1, proc.stderr  # a blank reference matches nothing: FAIL, not an abort
    assert "Traceback" not in proc.stderr and proc.stderr.strip() == ""
    report3 = json.loads((tmp_path / "example3.compare.json").read_text())
    assert [p["name"] for p in report3["panels"]] == ["panel 1", "panel 2", "panel 3"]  # the frames both have
    assert any("frames 3-29 and the final image" in n for n in report3["notes"])
    assert any("iterations 3-29 not compared" in n for n in report3["notes"])
    assert len(report3["trajectory"]) == 3
    report1 = json.loads((tmp_path / "example1.compare.json").read_text())  # the batch went on to example 1
    assert len(report1["panels"]) == 5 and any("not expected to match" in n for n in report1["notes"])
    assert "2 of 2 examples failed or did not match" in proc.stdout
    assert alone.returncode == 1, alone.stderr
    assert json.loads((tmp_path / "alone.json").read_text())["panels"] == report3["panels"]


def test_a_montage_name_in_the_way_is_refused_before_any_panel_runs(fake_nets, tmp_path):
    (tmp_path / "example1.jpg").mkdir()
    proc = _reproduce(fake_nets, "example1", "--output_dir", str(tmp_path), "--n_iters", "1", "--quiet")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "in the way" in proc.stderr, proc.stderr
    assert not (tmp_path / "example1").exists() or not any((tmp_path / "example1").iterdir())
