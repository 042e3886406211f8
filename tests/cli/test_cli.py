"""``dgn-am synthesize`` end to end, in child processes, on the made caffemodels; and every bad input."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ..conftest import PROTOTXT, run_cli, synth_args

STEM = "fc8_0643_03_0.99_8.0__0"


@pytest.fixture(scope="module")
def bound_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("bounds") / "fc6.txt"
    p.write_text(" ".join(str(10 + k % 4) for k in range(4096)) + "\n")
    return p


@pytest.fixture(scope="module")
def first_run(models, bound_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("run1")
    proc = run_cli(*synth_args(models, out, "--unit", "643", "--L2", "0.99", "--start_lr", "8.0",
                               "--end_lr", "1e-10", "--bound", str(bound_file), "--debug", "1", n_iters=3))
    return out, proc


def test_end_to_end_outputs(first_run):
    out, proc = first_run
    assert proc.returncode == 0, proc.stderr
    for ext in ("jpg", "png", "npz"):
        assert (out / f"{STEM}.{ext}").is_file()
    z = np.load(out / f"{STEM}.npz")
    assert sorted(z.files) == ["activations", "code", "image"]
    assert z["code"].dtype == np.float32 and z["code"].shape == (1, 4096)
    assert z["image"].dtype == np.float32 and z["image"].shape == (1, 3, 227, 227)
    assert z["activations"].shape == (3,)
    assert z["code"].min() >= 0 and z["code"].max() <= 13 * 0.99 + 1e-4  # bounds then decay
    # The PNG is the saved image under the released convention: RGB, [-120, 120] -> [0, 255].
    png = np.asarray(Image.open(out / f"{STEM}.png"))
    rgb = z["image"][0][::-1].transpose(1, 2, 0).astype(np.float64)
    expect = np.rint((np.clip(rgb, -120, 120) + 120) / 240 * 255)
    np.testing.assert_array_equal(png, expect.astype(np.uint8))
    assert "saved" in proc.stdout and STEM in proc.stdout
    umask = os.umask(0)
    os.umask(umask)
    for ext in ("jpg", "png", "npz", "json"):  # atomic writes still get a plain file's mode
        assert (out / f"{STEM}.{ext}").stat().st_mode & 0o777 == 0o666 & ~umask
    assert "fc8 unit 643" in proc.stderr and "3/3" in proc.stderr  # the progress bar


def test_debug_frames(first_run):
    out, _ = first_run
    frames = sorted(p.name for p in (out / f"{STEM}_debug").iterdir())
    # one per iteration (after its image step, as act_max.py wrote them), then the saved result as 003
    assert frames == ["000.jpg", "001.jpg", "002.jpg", "003.jpg"]
    assert Image.open(out / f"{STEM}_debug" / "002.jpg").size == (227, 227)
    final = np.asarray(Image.open(out / f"{STEM}_debug" / "003.jpg"), dtype=np.float64)
    saved = np.asarray(Image.open(out / f"{STEM}.jpg"), dtype=np.float64)
    last = np.asarray(Image.open(out / f"{STEM}_debug" / "002.jpg"), dtype=np.float64)
    assert np.abs(final - saved).mean() < 1.0  # the same image (JPEG both)
    assert np.abs(last - saved).mean() > np.abs(final - saved).mean()  # the stepped frame differs


def test_same_seed_same_arrays(first_run, models, bound_file, tmp_path):
    out1, _ = first_run
    proc = run_cli(*synth_args(models, tmp_path, "--unit", "643", "--L2", "0.99", "--start_lr", "8.0",
                               "--end_lr", "1e-10", "--bound", str(bound_file), n_iters=3))
    assert proc.returncode == 0, proc.stderr
    a, b = np.load(out1 / f"{STEM}.npz"), np.load(tmp_path / f"{STEM}.npz")
    for k in ("code", "image", "activations"):
        np.testing.assert_array_equal(a[k], b[k])


def test_other_seed_other_code(first_run, models, bound_file, tmp_path):
    proc = run_cli(*synth_args(models, tmp_path, "--unit", "643", "--L2", "0.99", "--start_lr", "8.0",
                               "--end_lr", "1e-10", "--bound", str(bound_file), "--seed", "1", n_iters=3))
    assert proc.returncode == 0, proc.stderr
    a = np.load(first_run[0] / f"{STEM}.npz")["code"]
    assert not np.array_equal(a, np.load(tmp_path / "fc8_0643_03_0.99_8.0__1.npz")["code"])


def test_conv_unit_and_init_image(models, tmp_path):
    img = tmp_path / "start.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(img)
    proc = run_cli(*synth_args(models, tmp_path / "o", "--unit", "8", "--act_layer", "conv5", "--xy", "6",
                               "--init_file", str(img), "--encoder_weights", str(models.caffenet), n_iters=1))
    assert proc.returncode == 0, proc.stderr
    z = np.load(tmp_path / "o" / "conv5_0008_01_1.0_2.0__0.npz")
    assert z["activations"].shape == (1,)


# --- bad input: one line on stderr, exit code 2, no traceback, no Caffe abort -------------------


def _fails(proc, *words: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dgn-am: error:")
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_bad_missing_model_files(tmp_path):
    proc = run_cli("synthesize", "--unit", "1", "--net_weights", str(tmp_path / "none.caffemodel"),
                   "--generator_weights", str(tmp_path / "gen.caffemodel"), "--output_dir", str(tmp_path))
    _fails(proc, "missing", "none.caffemodel", "gen.caffemodel", "dgn-am download")


def test_bad_weights_do_not_parse(models, tmp_path):
    junk = tmp_path / "junk.caffemodel"
    junk.write_bytes(b"\xff" * 1000)
    proc = run_cli(*synth_args(models, tmp_path, "--unit", "1", "--net_weights", str(junk)))
    _fails(proc, "does not parse")


def test_bad_weights_match_no_layer(models, tmp_path):
    proc = run_cli(*synth_args(models, tmp_path, "--unit", "1", "--net_weights", str(models.generator)))
    _fails(proc, "matches no layer")


def test_bad_weights_shape_mismatch(models, tmp_path):
    import caffe

    small = tmp_path / "fc8_10.prototxt"
    small.write_text((PROTOTXT / "caffenet.prototxt").read_text().replace("num_output: 1000", "num_output: 10"))
    net = caffe.Net(str(small), caffe.TEST)
    path = tmp_path / "small.caffemodel"
    net.save(str(path))
    proc = run_cli(*synth_args(models, tmp_path, "--unit", "1", "--net_weights", str(path)))
    _fails(proc, "fc8", "[10, 4096]", "[1000, 4096]")


def test_bad_weights_missing_a_layer(models, tmp_path):
    import caffe

    partial = tmp_path / "no_fc8.prototxt"
    text = (PROTOTXT / "caffenet.prototxt").read_text()
    partial.write_text(text.replace('name: "fc8"', 'name: "fc8_other"'))
    net = caffe.Net(str(partial), caffe.TEST)
    path = tmp_path / "partial.caffemodel"
    net.save(str(path))
    proc = run_cli(*synth_args(models, tmp_path, "--unit", "1", "--net_weights", str(path)))
    _fails(proc, "no weights for layer 'fc8'")


def test_bad_unknown_layer_name(models, tmp_path):
    proc = run_cli(*synth_args(models, tmp_path, "--unit", "1", "--act_layer", "fc9"))
    _fails(proc, "'fc9'", "not a blob")


def test_bad_unknown_layer_type(models, tmp_path):
    bad = tmp_path / "bad.prototxt"
    bad.write_text((PROTOTXT / "caffenet.prototxt").read_text().replace('type: "LRN"', 'type: "LRNX"', 1))
    proc = run_cli(*synth_args(models, tmp_path, "--unit", "1", "--net_definition", str(bad)))
    _fails(proc, "unknown type 'LRNX'")


def test_bad_prototxt_syntax(models, tmp_path):
    bad = tmp_path / "bad.prototxt"
    bad.write_text("layer { name: ")
    proc = run_cli(*synth_args(models, tmp_path, "--unit", "1", "--net_definition", str(bad)))
    _fails(proc, "not a valid prototxt")


def test_bad_cudnn_engine_on_cpu_build(models, tmp_path):
    bad = tmp_path / "g.prototxt"
    text = (PROTOTXT / "generator_fc6.prototxt").read_text()
    bad.write_text(text.replace("convolution_param {", "convolution_param {\n    engine: CUDNN", 1))
    proc = run_cli(*synth_args(models, tmp_path, "--unit", "1", "--generator_definition", str(bad)))
    _fails(proc, "CUDNN")


def test_bad_caffe_check_failure_in_definition(models, tmp_path):
    bad = tmp_path / "c.prototxt"
    bad.write_text((PROTOTXT / "caffenet.prototxt").read_text().replace("kernel_size: 11", "kernel_size: 400"))
    proc = run_cli(*synth_args(models, tmp_path, "--unit", "1", "--net_definition", str(bad)))
    _fails(proc, "Caffe rejected")


@pytest.mark.parametrize(("args", "words"), [
    (["--unit", "1000"], ["--unit 1000", "0..999"]),
    (["--unit", "-1"], ["--unit must be >= 0"]),
    (["--unit", "256", "--act_layer", "conv5"], ["--unit 256", "256 channels"]),
    (["--unit", "3", "--act_layer", "conv5", "--xy", "13"], ["x=13", "13x13"]),
    (["--unit", "1", "--n_iters", "0"], ["--n_iters"]),
    (["--unit", "1", "--start_lr", "nan"], ["--start_lr"]),
])
def test_bad_numbers(models, tmp_path, args, words):
    proc = run_cli(*synth_args(models, tmp_path, *args))
    _fails(proc, *words)


def test_bad_bound_files(models, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("1 2 3\n")
    _fails(run_cli(*synth_args(models, tmp_path, "--unit", "1", "--bound", str(short))), "3 values", "4096")
    words = tmp_path / "words.txt"
    words.write_text(" ".join(["5"] * 4095 + ["abc"]))
    _fails(run_cli(*synth_args(models, tmp_path, "--unit", "1", "--bound", str(words))), "non-number")


def test_bad_init_image(models, tmp_path):
    bad = tmp_path / "not_an_image.jpg"
    bad.write_text("hello")
    _fails(run_cli(*synth_args(models, tmp_path, "--unit", "1", "--init_file", str(bad),
                               "--encoder_weights", str(models.caffenet))), "not a readable image")


def test_bad_output_dir(models, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _fails(run_cli(*synth_args(models, blocker / "sub", "--unit", "1")), "not writable")


def test_bad_gpu_on_cpu_build(models, tmp_path):
    _fails(run_cli(*synth_args(models, tmp_path, "--unit", "1", "--gpu", "0")), "CPU-only")


def test_nothing_written_on_failure(models, tmp_path):
    out = tmp_path / "out"
    run_cli(*synth_args(models, out, "--unit", "5000"))
    assert not out.exists() or not any(p.suffix in (".jpg", ".npz") for p in out.iterdir())


def _script(name: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, DGN_AM_NETS=str(tmp_path / "nets"))
    return subprocess.run([str(root / "scripts" / name), str(tmp_path / "out"), *args], capture_output=True,
                          text=True, env=env, check=False)


def test_example1_offline_says_what_is_missing(tmp_path):
    _fails(_script("example1.sh", tmp_path), "bvlc_reference_caffenet.caffemodel", "generator.caffemodel",
           "dgn-am download")


def test_main_job_is_the_demo_and_names_missing_miniature_files(tmp_path):
    # The demo's end-to-end run on the committed files is tests/test_demo.py; here: the script runs it.
    (tmp_path / "mini").mkdir()
    _fails(_script("main_job.sh", tmp_path, "--model_dir", str(tmp_path / "mini")), "mini/generator.caffemodel",
           "mini/encoder.caffemodel", "dgn_am.mini.train all")


def test_released_name_pattern():
    from dgn_am.results.outputs import result_stem

    assert result_stem("fc8", 643, 200, 0.99, 8.0, 0) == "fc8_0643_200_0.99_8.0__0"
    assert result_stem("loss3/classifier", 5, 9, 1.0, 2.0, 3) == "loss3_classifier_0005_09_1.0_2.0__3"


def test_help_lists_act_max_options():
    proc = run_cli("synthesize", "--help")
    for opt in ["--unit", "--n_iters", "--L2", "--start_lr", "--end_lr", "--seed", "--xy", "--opt_layer",
                "--act_layer", "--init_file", "--debug", "--clip", "--bound", "--output_dir", "--net_weights",
                "--net_definition", "--generator_definition", "--generator_weights", "--gpu"]:
        assert opt in proc.stdout


def test_download_unknown_group_is_one_line(tmp_path):
    _fails(run_cli("download", "bogus", "--nets_dir", str(tmp_path)), "unknown download group 'bogus'")
    assert not any(tmp_path.iterdir())
