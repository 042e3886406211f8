"""Montages in the released layouts, and the panel-by-panel comparison with a reference (no Caffe needed)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from dgn_am.common.errors import InputError
from dgn_am.results import compare, montage

from ..conftest import run_cli

RELEASED_SIZES = {"example1": (1145, 269), "example2": (1146, 269), "example3": (2290, 1041),
                  "example4": (825, 205), "example5": (1130, 266)}


def smooth_tile(seed: int, size: int) -> np.ndarray:
    """A picture-like tile (smooth colour blobs) as H x W x 3 float RGB in [0, 1]."""
    small = (np.random.default_rng(seed).random((6, 6, 3)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC), dtype=np.float64) / 255.0


def tiles_for(geometry: montage.Geometry, n: int | None = None, seed: int = 0) -> tuple[list[np.ndarray], list[str]]:
    n = geometry.count if n is None else n
    tiles = [smooth_tile(seed + k, geometry.tile_w) for k in range(n)]
    labels = [f"unit {k}" for k in range(n)]
    if geometry.labelled is not None and n == geometry.count:
        labels[geometry.labelled :] = [""] * (n - geometry.labelled)
    return tiles, labels


def jpeg_copy(src, dst, quality: int = 75) -> None:
    Image.open(src).save(dst, format="JPEG", quality=quality)


@pytest.fixture(scope="module")
def example1(tmp_path_factory):
    """A result montage in example 1's layout, saved as the CLI saves it (JPEG)."""
    d = tmp_path_factory.mktemp("montage")
    geometry = montage.RELEASED_GEOMETRY["example1"]
    tiles, labels = tiles_for(geometry)
    return montage.save(montage.render(tiles, labels, geometry), d / "result.jpg")


@pytest.fixture(scope="module")
def example3(tmp_path_factory):
    d = tmp_path_factory.mktemp("montage3")
    geometry = montage.RELEASED_GEOMETRY["example3"]
    tiles, labels = tiles_for(geometry, seed=100)
    return montage.save(montage.render(tiles, labels, geometry), d / "example3.png")


@pytest.mark.parametrize("name", sorted(RELEASED_SIZES))
def test_render_gives_the_released_size(name):
    geometry = montage.RELEASED_GEOMETRY[name]
    tiles, labels = tiles_for(geometry)
    image = montage.render(tiles, labels, geometry)
    width, height = RELEASED_SIZES[name]
    assert image.shape == (height, width, 3) and image.dtype == np.uint8
    _, boxes, strips = geometry.released_layout()
    covered = np.zeros(image.shape[:2], dtype=bool)
    for tile, box, strip in zip(tiles, boxes, strips, strict=True):
        np.testing.assert_array_equal(box.crop(image), np.rint(tile * 255).astype(np.uint8))
        covered[box.top : box.top + box.height, box.left : box.left + box.width] = True
        if strip is not None:
            text = strip.crop(image)
            assert (text < 100).any()  # a label was drawn in the strip
            covered[strip.top : strip.top + strip.height, strip.left : strip.left + strip.width] = True
    assert (image[~covered] == 255).all()  # borders and padding are white background


def test_layout_quirks_of_the_released_images():
    e2 = montage.RELEASED_GEOMETRY["example2"].released_layout()[1]
    assert [b.left for b in e2] == [1, 230, 459, 688, 918]  # the wide last column of example 2
    size, boxes, strips = montage.RELEASED_GEOMETRY["example3"].released_layout()
    assert len(boxes) == 31 and strips[29] is not None and strips[30] is None
    assert boxes[30].top == 3 * 269 + 1 and boxes[9].left == 9 * 229 + 1


def test_shortened_run_gets_a_smaller_canvas():
    geometry = montage.RELEASED_GEOMETRY["example3"]
    tiles = [smooth_tile(k, 227) for k in range(4)]
    image = montage.render(tiles, ["1.00", "2.00", "3.00", ""], geometry)
    assert image.shape == (269, 4 * 229, 3)
    with pytest.raises(ValueError):
        montage.render(tiles[:2], ["a", "b"], montage.RELEASED_GEOMETRY["example4"])  # 227 px tiles, 163 px layout


def test_save_is_jpeg_or_png_by_suffix(tmp_path):
    geometry = montage.RELEASED_GEOMETRY["example4"]
    image = montage.render(*tiles_for(geometry), geometry)
    for suffix, fmt in ((".jpg", "JPEG"), (".png", "PNG")):
        path = montage.save(image, tmp_path / f"m{suffix}")
        with Image.open(path) as im:
            assert im.format == fmt and im.size == (825, 205)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "m.png")), image)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jpg", "m.png"]  # no temporary files left


def test_identical_passes(example1):
    report = compare.compare_release(example1, example1, "example1", None)
    assert report.passed and report.failures() == []
    assert [p.name for p in report.panels] == [f"panel {k}" for k in range(1, 6)]
    assert all(p.ssim == pytest.approx(1.0) and p.psnr == float("inf") for p in report.panels)


def test_jpeg_reencoded_copy_passes(example1, tmp_path):
    copy = tmp_path / "copy.jpg"
    jpeg_copy(example1, copy, quality=75)
    report = compare.compare_release(copy, example1, "example1", None)
    assert report.passed, report.table()
    assert all(p.psnr < 60 for p in report.panels)  # really a different encoding


@pytest.mark.parametrize("panel", [1, 3, 5])
def test_a_replaced_panel_fails_and_is_named(example1, tmp_path, panel):
    image = np.array(Image.open(example1))
    box = montage.RELEASED_GEOMETRY["example1"].released_layout()[1][panel - 1]
    image[box.top : box.top + box.height, box.left : box.left + box.width] = np.rint(smooth_tile(999, 227) * 255)
    altered = tmp_path / "altered.jpg"
    Image.fromarray(image).save(altered, quality=92)
    report = compare.compare_release(altered, example1, "example1", None)
    assert not report.passed
    assert report.failures() == [f"panel {panel}"]
    assert "FAIL" in report.table() and f"panel {panel}" in report.table()


def test_a_mirrored_panel_fails(example1, tmp_path):
    image = np.array(Image.open(example1))
    box = montage.RELEASED_GEOMETRY["example1"].released_layout()[1][1]
    region = image[box.top : box.top + box.height, box.left : box.left + box.width]
    region[...] = region[:, ::-1].copy()
    altered = tmp_path / "mirrored.png"
    Image.fromarray(image).save(altered)
    assert compare.compare_release(altered, example1, "example1", None).failures() == ["panel 2"]


def test_trajectory_exact_passes_and_five_percent_off_fails(example3):
    released = list(compare.RELEASED_TRAJECTORY["example3"])
    assert len(released) == 30 and released[0] == 19.56 and released[-1] == 59.95
    exact = compare.compare_release(example3, example3, "example3", released)
    assert exact.passed and len(exact.trajectory) == 30 and len(exact.panels) == 31

    rounded = [v + 0.004 for v in released]  # within the two printed decimals
    assert compare.compare_release(example3, example3, "example3", rounded).passed

    off = list(released)
    for i in (3, 12, 29):
        off[i] *= 1.05
    report = compare.compare_release(example3, example3, "example3", off)
    assert not report.passed
    assert report.failures() == ["iteration 3", "iteration 12", "iteration 29"]
    assert report.trajectory[12].rel_diff == pytest.approx(0.05)


def test_trajectory_of_another_length_names_the_missing_iterations(example3):
    short = list(compare.RELEASED_TRAJECTORY["example3"])[:28]
    report = compare.compare_release(example3, example3, "example3", short)
    assert report.failures() == ["iteration 28", "iteration 29"]


def test_no_trajectory_is_noted_not_failed(example3):
    report = compare.compare_release(example3, example3, None, None)  # layout found by size
    assert report.example == "example3" and report.passed and report.trajectory is None
    assert "not checked" in report.table()


def test_size_mismatch_is_an_input_error(example1, tmp_path):
    smaller = tmp_path / "smaller.png"
    Image.open(example1).crop((0, 0, 1144, 269)).save(smaller)
    with pytest.raises(InputError, match="1144x269 but reference .* is 1145x269"):
        compare.compare_release(smaller, example1, "example1", None)
    with pytest.raises(InputError, match="released example4 layout is 825x205"):
        compare.compare_release(example1, example1, "example4", None)
    with pytest.raises(InputError, match="size of no released example"):
        compare.compare_release(smaller, smaller, None, None)


def test_unreadable_files_are_input_errors(example1, tmp_path):
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not an image")
    with pytest.raises(InputError, match="is not a readable image"):
        compare.compare_release(garbage, example1, "example1", None)
    with pytest.raises(InputError, match="does not exist"):
        compare.compare_release(example1, tmp_path / "missing.jpg", "example1", None)
    with pytest.raises(InputError, match="unknown example 'example9'"):
        compare.compare_release(example1, example1, "example9", None)


def test_report_json(example1, tmp_path):
    report = compare.compare_release(example1, example1, "example1", None)
    out = compare.write_report(report, tmp_path / "r.json")
    data = json.loads(out.read_text())
    assert data["verdict"] == "pass" and data["failures"] == [] and data["example"] == "example1"
    assert [p["verdict"] for p in data["panels"]] == ["pass"] * 5
    assert data["panels"][0]["psnr"] is None and data["panels"][0]["box"] == {"top": 1, "left": 1, "height": 227,
                                                                                  "width": 227}
    with pytest.raises(InputError, match="cannot write the report"):
        compare.write_report(report, tmp_path / "no" / "such" / "dir" / "r.json")


def test_cli_compare(example1, tmp_path):
    same = run_cli("compare", str(example1), str(example1), "--example", "example1", "--json", str(tmp_path / "a.json"))
    assert same.returncode == 0, same.stderr
    assert "PASS" in same.stdout and json.loads((tmp_path / "a.json").read_text())["verdict"] == "pass"

    image = np.array(Image.open(example1))
    box = montage.RELEASED_GEOMETRY["example1"].released_layout()[1][2]
    image[box.top : box.top + box.height, box.left : box.left + box.width] = 0
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=92)
    altered = tmp_path / "altered.jpg"
    altered.write_bytes(buf.getvalue())
    proc = run_cli("compare", str(altered), str(example1))  # layout from the size, report beside the result
    assert proc.returncode == 1, proc.stderr
    assert "FAIL: panel 3 " in proc.stdout
    data = json.loads((tmp_path / "altered.compare.json").read_text())
    assert data["failures"] == ["panel 3"] and data["panels"][2]["verdict"] == "fail"

    missing = run_cli("compare", str(tmp_path / "missing.jpg"), str(example1))
    assert missing.returncode == 2
    assert missing.stderr.startswith("dgn-am: error: ") and missing.stderr.count("\n") == 1
    assert "missing.jpg does not exist" in missing.stderr


def test_cli_reads_the_trajectory_beside_the_result(example3, tmp_path):
    result = tmp_path / "example3.png"
    result.write_bytes(example3.read_bytes())
    off = [v * 1.05 if i == 7 else v for i, v in enumerate(compare.RELEASED_TRAJECTORY["example3"])]
    (tmp_path / "example3.json").write_text(json.dumps({"release": "example3", "trajectory": off}))
    proc = run_cli("compare", str(result), str(example3))
    assert proc.returncode == 1, proc.stderr
    assert "FAIL: iteration 7 " in proc.stdout


# --- any montage: --grid ROWSxCOLS --tile N ---------------------------------------------------------------


def _grid_montage(path, rows: int = 2, columns: int = 3, tile: int = 48):
    rng = np.random.default_rng(5)
    tiles = [np.kron(rng.uniform(0, 1, (6, 6, 3)), np.ones((tile // 6, tile // 6, 1))) for _ in range(rows * columns)]
    image = montage.render(tiles, [f"tile {k}" for k in range(len(tiles))],
                           montage.grid_geometry("test", tile, len(tiles), columns))
    Image.fromarray(image).save(path)
    return image


def test_grid_compares_any_montage_and_names_the_doctored_tile(tmp_path):
    good = tmp_path / "good.png"
    image = _grid_montage(good)
    same = run_cli("compare", str(good), str(good), "--grid", "2x3", "--tile", "48", "--json", str(tmp_path / "s.json"))
    assert same.returncode == 0, same.stdout + same.stderr
    assert "row 2 col 3" in same.stdout and "PASS" in same.stdout
    doctored = image.copy()
    geometry = montage.grid_geometry("test", 48, 6, 3)
    box = geometry.released_layout()[1][5]  # row 2, column 3
    doctored[box.top : box.top + box.height, box.left : box.left + box.width] = \
        doctored[box.top : box.top + box.height, box.left : box.left + box.width][:, ::-1]
    bad = tmp_path / "bad.png"
    Image.fromarray(doctored).save(bad)
    proc = run_cli("compare", str(bad), str(good), "--grid", "2x3", "--tile", "48")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL: row 2 col 3 (report" in proc.stdout
    report = json.loads((tmp_path / "bad.compare.json").read_text())
    assert report["failures"] == ["row 2 col 3"] and report["example"] == "grid"


@pytest.mark.parametrize(("args", "words"), [
    (["--grid", "2x3"], "--grid and --tile go together"),
    (["--grid", "2by3", "--tile", "48"], "ROWSxCOLS"),
    (["--grid", "2x4", "--tile", "48"], "wide"),
    (["--grid", "5x3", "--tile", "48"], "high"),
    (["--grid", "2x3", "--tile", "48", "--example", "example1"], "leave out --example"),
])
def test_grid_refuses_a_layout_that_does_not_fit(tmp_path, args, words):
    good = tmp_path / "good.png"
    _grid_montage(good)
    proc = run_cli("compare", str(good), str(good), *args)
    assert proc.returncode == 2 and words in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "good.compare.json").exists()
