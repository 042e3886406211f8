"""``dgn-am layers``, ``--version`` and ``--help``: what a researcher reads before a run."""

from __future__ import annotations

import textwrap
from pathlib import Path

from dgn_am import __version__
from dgn_am import backend as cb
from dgn_am.backend.netinfo import SpatialLayer, field_of, receptive_field
from dgn_am.backend.summary import summarize
from tests.conftest import PROTOTXT, run_cli


def _rows(stdout: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split()[1:] for line in stdout.splitlines()[1:-1]}


def test_version_names_the_package():
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"dgn-am {__version__}"


def test_caffenet_blobs_units_fields_and_roles():
    proc = run_cli("layers", str(PROTOTXT / "caffenet.prototxt"))
    assert proc.returncode == 0, proc.stderr
    rows = _rows(proc.stdout)
    assert list(rows)[:2] == ["data", "conv1"] and "prob" in rows
    assert rows["fc8"][:2] == ["1x1000", "1000"] and rows["fc8"][-2:] == ["yes", "-"]
    # conv5: 163 px windows every 16 px from -64, so unit (6, 6) sees the released 163 x 163 crop at 32
    assert rows["conv5"] == ["1x256x13x13", "256", "163", "16", "-64", "yes", "-"]
    assert rows["conv1"][2:5] == ["11", "4", "0"]
    assert rows["pool5"][-1] == "yes" and rows["fc6"][-1] == "yes" and rows["fc7"][-1] == "yes"
    assert rows["conv5"][-1] == "-" and rows["data"][-2:] == ["-", "-"]   # the image is no target
    assert proc.stdout.splitlines()[-1].endswith("input 'data'")


def test_field_agrees_with_the_clipped_receptive_field():
    layers = cb.spatial_layers(PROTOTXT / "caffenet.prototxt")
    for blob, x in (("conv5", 6), ("pool2", 3), ("conv1", 10)):
        f = field_of(layers, blob, (227, 227))
        top = f.offset[0] + x * f.stride[0]
        want = (max(top, 0), max(top, 0), min(top + f.size[0], 227) - max(top, 0))
        got = receptive_field(layers, blob, x, x, (227, 227))
        assert (got[0], got[1], got[2]) == want and got[2] == got[3]


def test_non_square_windows_per_axis():
    layers = [SpatialLayer("c", "Convolution", ("data",), ("c",), kernel=(3, 5), stride=(1, 2), pad=(1, 0))]
    f = field_of(layers, "c", (20, 30))
    assert (f.size, f.stride, f.offset, f.whole) == ((3, 5), (1, 2), (-1, 0), False)


def test_generator_blobs_have_no_image_field(tmp_path: Path):
    summary = summarize(PROTOTXT / "generator_fc6.prototxt")
    rows = {r.name: r for r in summary.rows}
    assert summary.input_blob == "feat" and rows["feat"].units == 4096
    assert rows["deconv0"].shape == (1, 3, 256, 256) and rows["deconv0"].units == 3
    assert all(r.field is None for r in summary.rows)   # its input is a code, not an image
    assert rows["deconv0"].target and not rows["feat"].target


SMALL = """\
input: "data"
input_shape {{ dim: 1 dim: 3 dim: 16 dim: 16 }}
layer {{ name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param {{ num_output: {n} kernel_size: 3 }} }}
"""


def test_weights_that_do_not_fit_are_one_line_before_anything_is_listed(tmp_path: Path):
    a, b = tmp_path / "a.prototxt", tmp_path / "b.prototxt"
    a.write_text(textwrap.dedent(SMALL.format(n=4)))
    b.write_text(textwrap.dedent(SMALL.format(n=5)))
    weights = cb.save_random_weights(a, tmp_path / "a.caffemodel", 0)
    ok = run_cli("layers", str(a), "--weights", str(weights))
    assert ok.returncode == 0 and _rows(ok.stdout)["conv"][:5] == ["1x4x14x14", "4", "3", "1", "0"]
    bad = run_cli("layers", str(b), "--weights", str(weights))
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "conv" in bad.stderr


def test_a_missing_definition_is_one_line(tmp_path: Path):
    proc = run_cli("layers", str(tmp_path / "nothing.prototxt"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "nothing.prototxt" in proc.stderr


def test_help_says_what_dgn_am_is_and_every_default():
    top = run_cli("--help")
    assert top.returncode == 0 and "DGN-AM" in top.stdout and "preferred input" in top.stdout
    assert "layers" in top.stdout and "Nothing else lives here" not in top.stdout
    synth = " ".join(run_cli("synthesize", "--help").stdout.split())
    for option, default in (("--seed SEED", "0"), ("--act_layer ACT_LAYER", "fc8"),
                            ("--opt_layer {fc6,fc7,pool5}", "fc6"), ("--n_iters N_ITERS", "10"),
                            ("--output_dir OUTPUT_DIR", ".")):
        tail = synth.split(f"{option} ", 1)[1].split(" --", 1)[0]
        assert f"default: {default})" in tail or f"default {default}" in tail, (option, tail)
    assert "(default: )" not in synth and "(default: None)" not in synth and "(default: False)" not in synth
