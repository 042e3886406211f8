"""Runs that used to give a wrong result with exit 0 (issue 9): each now gives the right result or one refusal.

They run on the committed miniature model (E as the target, G as the generator: 64 x 64 images, a
256-unit code), so each run takes well under a second; the rules they test are the same for CaffeNet.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from ..conftest import ROOT, run_cli

MINI_PROTO = ROOT / "prototxt" / "mini"
MINI_NETS = ROOT / "nets" / "mini"
ENCODER = MINI_PROTO / "encoder.prototxt"
GENERATOR = MINI_PROTO / "generator.prototxt"
STEM = "fc8_0003_04_0.97_1.0__0"


def mini_args(out: Path, *extra: str, unit: int = 3, n_iters: int = 4) -> list[str]:
    """``dgn-am synthesize`` on the miniature model, the demo's settings shortened."""
    args = {"--net_definition": str(ENCODER), "--net_weights": str(MINI_NETS / "encoder.caffemodel"),
            "--generator_definition": str(GENERATOR), "--generator_weights": str(MINI_NETS / "generator.caffemodel"),
            "--bound": str(MINI_NETS / "fc6_bounds.txt"), "--unit": str(unit), "--n_iters": str(n_iters),
            "--L2": "0.97", "--start_lr": "1.0", "--end_lr": "1e-10", "--output_dir": str(out)}
    extra_keys = {e for e in extra if e.startswith("--")}
    flat = [x for k, v in args.items() if k not in extra_keys for x in (k, v)]
    return ["synthesize", *flat, *extra, "--quiet"]


def fails(proc, *words: str) -> str:
    """One line on stderr, exit 2, no traceback; returns the line."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-1500:], proc.stderr[-1500:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def files(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its sha256 (to prove nothing was written or changed)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def edited(tmp_path: Path, source: Path, name: str, old: str, new: str, count: int = 1) -> Path:
    text = source.read_text()
    assert old in text, old
    path = tmp_path / name
    path.write_text(text.replace(old, new, count))
    return path


def with_layer(tmp_path: Path, name: str, layer: str) -> Path:
    """The miniature encoder with ``layer`` (prototxt text of one layer) inserted before its softmax."""
    before = 'layer {\n  name: "prob"'
    return edited(tmp_path, ENCODER, name, before, layer + "\n" + before)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The miniature run as it should come out, from the committed (force_backward) prototxts."""
    out = tmp_path_factory.mktemp("reference")
    proc = run_cli(*mini_args(out))
    assert proc.returncode == 0, proc.stderr
    return out, np.load(out / f"{STEM}.npz")


# --- 1. deploy prototxts without force_backward ---------------------------------------------------------


def test_definitions_without_force_backward_give_the_released_result(reference, tmp_path):
    net = edited(tmp_path, ENCODER, "encoder.prototxt", "force_backward: true\n", "")
    gen = edited(tmp_path, GENERATOR, "generator.prototxt", "force_backward: true\n", "")
    out = tmp_path / "out"
    proc = run_cli(*mini_args(out, "--net_definition", str(net), "--generator_definition", str(gen)))
    assert proc.returncode == 0, proc.stderr
    z = np.load(out / f"{STEM}.npz")
    assert len(z["activations"]) == 4  # it did not "finish" after one iteration on a zero gradient
    for key in ("code", "image", "activations"):
        np.testing.assert_array_equal(z[key], reference[1][key])  # bit-identical to the flagged definitions
    record = json.loads((out / f"{STEM}.json").read_text())
    assert record["models"]["target"]["force_backward_added"] is True
    assert record["models"]["generator"]["force_backward_added"] is True
    assert json.loads((reference[0] / f"{STEM}.json").read_text())["models"]["target"]["force_backward_added"] is False


# --- 2. an input blob made by a layer ---------------------------------------------------------------------

DUMMY_DATA = """layer {
  name: "data"
  type: "DummyData"
  top: "data"
  dummy_data_param { shape { dim: 1 dim: 3 dim: 64 dim: 64 } }
}"""


def _input_layer(text: str, blob: str) -> str:
    start = text.index(f'layer {{\n  name: "{blob}"')
    return text[start : text.index("\n}\n", start) + 2]


def test_an_image_input_made_by_a_layer_is_refused(tmp_path):
    text = ENCODER.read_text()
    net = tmp_path / "dummy.prototxt"
    net.write_text(text.replace(_input_layer(text, "data"), DUMMY_DATA))
    out = tmp_path / "out"
    fails(run_cli(*mini_args(out, "--net_definition", str(net))), "'data'", "DummyData", "not a net input")
    assert files(out) == {}
    gtext = GENERATOR.read_text()
    gen = tmp_path / "gen.prototxt"
    gen.write_text(gtext.replace(_input_layer(gtext, "feat"),
                                 DUMMY_DATA.replace('"data"', '"feat"').replace("dim: 3 dim: 64 dim: 64", "dim: 256")))
    fails(run_cli(*mini_args(out, "--generator_definition", str(gen))), "'feat'", "not a net input")
    assert files(out) == {}


# --- 3. NaN and Inf ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("which", ["net", "generator"])
def test_weights_holding_nan_or_inf_are_refused_before_the_run(tmp_path, value, which):
    import caffe

    definition, weights = (ENCODER, "encoder") if which == "net" else (GENERATOR, "generator")
    net = caffe.Net(str(definition), caffe.TEST, weights=str(MINI_NETS / f"{weights}.caffemodel"))
    layer = list(net.params)[-1]
    net.params[layer][0].data.flat[7] = value
    bad = tmp_path / "bad.caffemodel"
    net.save(str(bad))
    out = tmp_path / "out"
    fails(run_cli(*mini_args(out, f"--{which}_weights", str(bad))), "NaN or Inf", f"layer '{layer}'")
    assert files(out) == {}


def test_a_nan_during_the_run_stops_it_at_that_iteration_and_writes_nothing(tmp_path):
    # sqrt(fc8 - 1000): NaN wherever fc8 is below 1000, from the first forward pass on
    net = with_layer(tmp_path, "nan.prototxt", 'layer {\n  name: "root"\n  type: "Power"\n  bottom: "fc8"\n'
                     '  top: "root"\n  power_param { power: 0.5 shift: -1000 }\n}')
    out = tmp_path / "out"
    fails(run_cli(*mini_args(out, "--net_definition", str(net), "--act_layer", "root", "--debug", "1")),
          "failed at iteration 1 of 4", "the activation became nan", "no result was written")
    assert files(out) == {} and not [p for p in out.iterdir() if p.is_dir()]  # no frames either


# --- 5. a second run under the same released file name ---------------------------------------------------


def test_a_different_run_under_the_same_name_is_refused_unless_overwrite(reference, tmp_path):
    out = tmp_path / "out"
    first = run_cli(*mini_args(out, "--debug", "1"))
    assert first.returncode == 0, first.stderr
    before = files(out)
    assert f"{STEM}_debug/004.jpg" in before
    halved = tmp_path / "half_bounds.txt"
    halved.write_text(" ".join(str(float(v) / 2) for v in (MINI_NETS / "fc6_bounds.txt").read_text().split()))
    # Other bounds, or clipping: the same released name, a different run.
    for extra in (("--bound", str(halved)), ("--clip", "1", "--bound", "")):
        line = fails(run_cli(*mini_args(out, *extra)), f"{STEM}.json records a different run", "--overwrite")
        assert ("bound" in line) if extra[0] == "--bound" else ("clip False (this run: True)" in line)
        assert files(out) == before  # nothing of the earlier run was touched
    # The same run again is no conflict (it is simply made again, identically).
    again = run_cli(*mini_args(out))
    assert again.returncode == 0, again.stderr
    assert {k: v for k, v in files(out).items() if not k.endswith(".json")} == \
        {k: v for k, v in before.items() if not k.endswith(".json")}
    # --overwrite replaces it, old files first: the other run's debug frames do not stay beside the new result.
    proc = run_cli(*mini_args(out, "--bound", str(halved), "--overwrite"))
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / f"{STEM}.json").read_text())
    assert record["parameters"]["bound"] == str(halved)
    assert not (out / f"{STEM}_debug").exists()
    assert files(out)[f"{STEM}.npz"] != before[f"{STEM}.npz"]


# --- 6. compare --json naming an input ------------------------------------------------------------------


def test_compare_never_writes_over_an_input_or_a_symlink(tmp_path):
    from PIL import Image

    from dgn_am.results import montage

    g = montage.RELEASED_GEOMETRY["example1"]
    picture = np.random.default_rng(0).integers(0, 256, (g.size[1], g.size[0], 3), dtype=np.uint8)
    result, reference = tmp_path / "result.png", tmp_path / "reference.png"
    Image.fromarray(picture).save(result)
    Image.fromarray(picture).save(reference)
    record = tmp_path / "result.json"
    record.write_text(json.dumps({"release": "example1"}))
    keep = tmp_path / "keep.txt"
    keep.write_text("mine")
    (tmp_path / "link.json").symlink_to(keep)
    before = files(tmp_path)
    for target, words in ((result, "also an input"), (reference, "also an input"), (record, "also an input"),
                          (tmp_path / "link.json", "symlink"), (tmp_path, "in the way")):
        fails(run_cli("compare", str(result), str(reference), "--json", str(target)), words)
        assert files(tmp_path) == before
    assert (tmp_path / "link.json").is_symlink()
    ok = run_cli("compare", str(result), str(reference))
    assert ok.returncode == 0, ok.stderr


# --- 7. early stops are said -------------------------------------------------------------------------------


def test_an_early_stop_is_said_in_the_output_and_the_manifest(tmp_path):
    # A unit whose gradient is zero everywhere (scale 0), the case the released code ends a run on.
    net = with_layer(tmp_path, "dead.prototxt", 'layer {\n  name: "dead"\n  type: "Power"\n  bottom: "fc8"\n'
                     '  top: "dead"\n  power_param { scale: 0 }\n}')
    out = tmp_path / "out"
    proc = run_cli(*mini_args(out, "--net_definition", str(net), "--act_layer", "dead", n_iters=3))
    assert proc.returncode == 0, proc.stderr
    assert "stopped early after iteration 1 of 3: the image gradient is zero" in proc.stdout
    record = json.loads((out / "dead_0003_03_0.97_1.0__0.json").read_text())
    assert record["results"]["stopped_early"] == {"iteration": 0, "iterations_run": 1, "of": 3,
                                                   "reason": "the image gradient is zero"}
    full = run_cli(*mini_args(tmp_path / "full", n_iters=3))
    assert "stopped early" not in full.stdout
    assert json.loads((tmp_path / "full" / "fc8_0003_03_0.97_1.0__0.json").read_text())["results"]["stopped_early"] \
        is None


# --- more wrong results and aborts -----------------------------------------------------------------------


def test_an_act_layer_blob_named_apart_from_its_layer(reference, tmp_path):
    net = edited(tmp_path, ENCODER, "renamed.prototxt", 'top: "fc8"', 'top: "scores"')
    net.write_text(net.read_text().replace('bottom: "fc8"', 'bottom: "scores"'))
    out = tmp_path / "out"
    proc = run_cli(*mini_args(out, "--net_definition", str(net), "--act_layer", "scores"))
    assert proc.returncode == 0, proc.stderr
    z = np.load(out / "scores_0003_04_0.97_1.0__0.npz")
    np.testing.assert_array_equal(z["activations"], reference[1]["activations"])


def test_caffe_rejections_show_the_fatal_line_not_the_stack_trace(tmp_path):
    # Two layers writing one blob (not in place): Caffe's LOG(FATAL), which is no "Check failed" line.
    net = with_layer(tmp_path, "twice.prototxt", 'layer {\n  name: "again"\n  type: "Power"\n  bottom: "fc8"\n'
                     '  top: "fc6"\n}')
    line = fails(run_cli(*mini_args(tmp_path / "out", "--net_definition", str(net))), "Caffe rejected")
    assert "produced by multiple sources" in line and "stack trace" not in line


def test_a_gradient_path_through_a_layer_without_backward_is_refused(tmp_path):
    net = with_layer(tmp_path, "argmax.prototxt", 'layer {\n  name: "best"\n  type: "ArgMax"\n  bottom: "fc8"\n'
                     '  top: "best"\n}')
    out = tmp_path / "out"
    fails(run_cli(*mini_args(out, "--net_definition", str(net), "--act_layer", "best", "--unit", "0")),
          "'best' (ArgMax)", "no backward pass")
    assert files(out) == {}


def test_refusals_found_by_the_net_leave_no_file(tmp_path):
    # A conv unit whose receptive field cannot be traced (a Reshape on the way): refused before the debug
    # frames or any result are written.
    net = with_layer(tmp_path, "reshape.prototxt", 'layer {\n  name: "up"\n  type: "Reshape"\n  bottom: "conv1"\n'
                     '  top: "up"\n  reshape_param { shape { dim: 0 dim: -1 dim: 1 dim: 1 } }\n}')
    out = tmp_path / "out"
    fails(run_cli(*mini_args(out, "--net_definition", str(net), "--act_layer", "up", "--unit", "0", "--debug", "1")),
          "Reshape")
    assert files(out) == {} and not any(p.is_dir() for p in out.iterdir())


@pytest.mark.parametrize("occupied", [f"{STEM}.png", f"{STEM}.npz", f"{STEM}.json", f"{STEM}_rf.png"])
def test_an_output_name_held_by_a_folder(tmp_path, occupied):
    out = tmp_path / "out"
    (out / occupied).mkdir(parents=True)
    (out / occupied / "mine.txt").write_text("keep")
    proc = run_cli(*mini_args(out))
    if occupied.endswith("_rf.png"):  # an fc unit writes no receptive-field crop: nothing is in the way
        assert proc.returncode == 0, proc.stderr
    else:
        fails(proc, "in the way")
        assert files(out) == {f"{occupied}/mine.txt": hashlib.sha256(b"keep").hexdigest()}


def test_debug_folder_held_by_a_file_or_by_files_of_the_user(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{STEM}_debug").write_text("mine")
    fails(run_cli(*mini_args(out, "--debug", "1")), "not a folder of frames")
    (out / f"{STEM}_debug").unlink()
    (out / f"{STEM}_debug").mkdir()
    (out / f"{STEM}_debug" / "notes.txt").write_text("mine")
    fails(run_cli(*mini_args(out, "--debug", "1")), "did not write", "notes.txt")
    assert files(out) == {f"{STEM}_debug/notes.txt": hashlib.sha256(b"mine").hexdigest()}


def test_a_layer_name_too_long_for_the_file_system(tmp_path):
    long = "fc8_" + "x" * 250
    net = edited(tmp_path, ENCODER, "long.prototxt", 'top: "fc8"', f'top: "{long}"')
    net.write_text(net.read_text().replace('bottom: "fc8"', f'bottom: "{long}"'))
    out = tmp_path / "out"
    fails(run_cli(*mini_args(out, "--net_definition", str(net), "--act_layer", long)), "too long")
    assert files(out) == {}


def test_two_processes_never_make_one_run_at_once(tmp_path):
    from dgn_am.common import locks

    out = tmp_path / "out"
    out.mkdir()
    with locks.exclusive(locks.run_lock(out, STEM), wait=False):
        fails(run_cli(*mini_args(out)), "another dgn-am process is making", STEM)
    assert files(out) == {}
    assert run_cli(*mini_args(out)).returncode == 0  # the lock is gone with its holder


def test_mini_train_refuses_a_junk_encoder_in_one_line(tmp_path):
    import subprocess
    import sys

    (tmp_path / "encoder.caffemodel").write_bytes(os.urandom(3000))
    for stage in ("bounds", "generator"):
        proc = subprocess.run([sys.executable, "-m", "dgn_am.mini.train", stage, "--out_dir", str(tmp_path)],
                              capture_output=True, text=True, check=False)
        fails(proc, "encoder.caffemodel")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["encoder.caffemodel"]


def test_demo_with_a_junk_judge_refuses_before_writing(tmp_path):
    import shutil

    models = tmp_path / "mini"
    shutil.copytree(MINI_NETS, models)
    (models / "classifier.caffemodel").write_bytes(b"\x08\x01" + os.urandom(2000))
    out = tmp_path / "out"
    fails(run_cli("demo", "--evaluate", "--quiet", "--model_dir", str(models), "--output_dir", str(out)),
          "classifier.caffemodel")
    assert files(out) == {}


def test_a_file_size_limit_part_way_through_the_results(tmp_path):
    """``ulimit -f``: the npz (49 KB here) cannot be written; one line, and no partial or temporary file."""
    import resource
    import subprocess
    import sys

    out = tmp_path / "out"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    proc = subprocess.run([sys.executable, "-m", "dgn_am.cli", *mini_args(out)], capture_output=True, text=True,
                          preexec_fn=limit, env=dict(os.environ, GLOG_minloglevel="2"), check=False)
    line = fails(proc, "cannot write", "file-size limit")
    assert STEM in line
    assert not [p for p in out.iterdir() if p.name.endswith((".tmp", ".json"))]  # no manifest: an unfinished run
    again = run_cli(*mini_args(out))  # without the limit, the run is simply made
    assert again.returncode == 0, again.stderr
