"""``dgn-am figure``: the recipes' runs and provenance, and each figure end to end on made weights."""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dgn_am import backend as cb
from dgn_am.common.errors import InputError
from dgn_am.runs import figures

from ..conftest import PROTOTXT


def test_s18_is_120_distinct_units_with_a_recorded_draw():
    fig = figures.select("s18")
    assert len(fig.units) == 120 == len(set(fig.units)) and all(0 <= u < 1000 for u in fig.units)
    assert list(fig.units) == np.random.default_rng(figures.S18_SEED).choice(1000, 120, replace=False).tolist()
    assert f"default_rng({figures.S18_SEED})" in fig.provenance["units"]
    assert fig.columns == 12 and [len(g) for _, g in fig.groups()] == [120]


def test_every_setting_says_where_it_came_from(tmp_path):
    for fig in figures.recipes().values():
        assert {"units", "seeds", "settings"} <= set(fig.provenance)
        assert all(v.split(":")[0] in ("released", "paper", "chosen") for v in fig.provenance.values()), fig.name
        runs = fig.runs(tmp_path)
        places = {(r.output_dir, r.act_layer, r.stem()) for r in runs}
        assert len(runs) == sum(len(c) for _, c in fig.groups()) == len(places)
        assert {(r.n_iters, r.L2, r.start_lr, r.end_lr) for r in runs} == {(200, 0.99, 8.0, 1e-10)}
        assert {r.opt_layer for r in runs} == ({"pool5", "fc6", "fc7"} if fig.priors else {"fc6"})
    fig5 = figures.select("fig5")
    assert fig5.split and [len(g) for _, g in fig5.groups()] == [9] * 5 and fig5.seeds == tuple(range(9))
    s16 = figures.select("s16")
    assert s16.net == "places205" and s16.act_layer == "conv5" and s16.xy == 6 and s16.tile == "rf"
    assert [r.unit for r in s16.runs(tmp_path)][:5] == [8] * 5  # a row per unit: its five starts
    s13 = figures.select("s13")
    assert [(r.opt_layer, r.bound.name, r.output_dir.name) for r in s13.runs(tmp_path)][::5] == [
        ("pool5", "conv5.txt", "pool5"), ("fc6", "fc6.txt", "fc6"), ("fc7", "fc7.txt", "fc7")]
    for name, classes in (("s14", 1000), ("s15", 205)):
        fig = figures.select(name)
        assert [layer for layer, _, _ in fig.layers] == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7",
                                                        "fc8"]
        assert {(r.act_layer, r.x, r.y) for r in fig.runs(tmp_path) if r.act_layer == "conv1"} == {("conv1", 27, 27)}
        assert all(u < classes for u in fig.layers[-1][2]) and len(fig.runs(tmp_path)) == 40
        with pytest.raises(InputError, match="--units does not apply"):
            fig.with_units([1])


def test_other_units_and_unknown_figures():
    fig = figures.select("fig5").with_units([1, 2, 1])
    assert fig.units == (1, 2) and fig.provenance["units"].startswith("chosen")
    with pytest.raises(InputError, match="unknown figure 'fig99'; choose from s18"):
        figures.select("fig99")


def _run(nets, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DGN_AM_NETS=str(nets), GLOG_minloglevel="2")
    return subprocess.run([sys.executable, "-m", "dgn_am.cli", "figure", *args], capture_output=True, text=True,
                          env=env, check=False)


@pytest.fixture(scope="module")
def nets(models, tmp_path_factory):
    """A nets/ folder as `dgn-am download` leaves it, with made weights for CaffeNet, Places205 and the generator."""
    nets = tmp_path_factory.mktemp("nets")
    (nets / "caffenet").mkdir()
    (nets / "placesCNN").mkdir()
    (nets / "generators" / "fc6").mkdir(parents=True)
    os.symlink(models.caffenet, nets / "caffenet" / "bvlc_reference_caffenet.caffemodel")
    os.symlink(models.generator, nets / "generators" / "fc6" / "generator.caffemodel")
    cb.save_random_weights(PROTOTXT / "places205_alexnet.prototxt",
                           nets / "placesCNN" / "places205CNN_iter_300000.caffemodel", 3)
    for layer, seed in (("fc7", 4), ("pool5", 5)):  # s13's other priors
        (nets / "generators" / layer).mkdir(parents=True)
        cb.save_random_weights(PROTOTXT / f"generator_{layer}.prototxt",
                               nets / "generators" / layer / "generator.caffemodel", seed)
    bounds = nets / "released" / "act_range" / "3x"
    bounds.mkdir(parents=True)
    (bounds / "fc6.txt").write_text(" ".join(["12"] * 4096) + "\n")
    (bounds / "fc7.txt").write_text(" ".join(["6"] * 4096) + "\n")
    (bounds / "conv5.txt").write_text(" ".join(["30"] * 9216) + "\n")  # the pool5 prior's 256x6x6 code
    return nets


def test_dry_run_prints_one_synthesize_line_per_image(nets, tmp_path):
    proc = _run(nets, "s18", "--dry-run", "--output_dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("dgn-am synthesize")]
    assert len(lines) == 120 and len({ln.split("--unit ")[1].split()[0] for ln in lines}) == 120
    assert "# s18:" in proc.stdout and "chosen: 120 of 1000" in proc.stdout
    assert not (tmp_path / "s18").exists()  # a dry run writes nothing


@pytest.mark.parametrize(("name", "batch", "montages", "tile"), [
    ("s10", "4", 5, 227), ("s16", "5", 1, 163), ("fig5", "9", 5, 227), ("s18", "8", 1, 227), ("s14", "5", 8, 11),
    ("s15", "5", 8, 11), ("s13", "5", 3, 227),
])
def test_each_figure_runs_end_to_end_and_resumes(nets, tmp_path, name, batch, montages, tile):
    proc = _run(nets, name, "--n_iters", "2", "--batch", batch, "--output_dir", str(tmp_path), "--quiet")
    assert proc.returncode == 0, proc.stderr
    fig = figures.select(name)
    folder = tmp_path / name
    record = json.loads((folder / f"{name}.json").read_text())
    assert record["provenance"] == fig.provenance and record["shortened"] and record["n_iters"] == 2
    assert len(record["montages"]) == montages and record["waiting_for_runs"] == 0
    assert len(record["runs"]) == sum(len(cells) for _, cells in fig.groups())
    assert all((folder / r).is_file() for r in record["runs"])
    cells = len(fig.groups()[0][1])
    with Image.open(folder / record["montages"][0]) as im:
        columns = min(cells, fig.columns)
        assert im.width == columns * (tile + 2)  # tiles of the figure's size with a 1 px border
        assert im.height >= -(-cells // fig.columns) * (tile + 2)
    assert "is NOT a reproduction" in proc.stdout
    page = (folder / "index.html").read_text()  # the figure's page: its montages, provenance, then every run
    assert all(f'src="{m}"' in page for m in record["montages"])
    assert all(html.escape(v) in page for v in fig.provenance.values())
    assert page.count("<figure>") == len(record["runs"])
    again = _run(nets, name, "--n_iters", "2", "--output_dir", str(tmp_path), "--quiet")
    assert again.returncode == 0 and f"0 ran, {len(record['runs'])} skipped" in again.stdout, again.stdout


def test_shards_draw_the_montage_when_the_last_part_is_done(nets, tmp_path):
    first = _run(nets, "s10", "--n_iters", "1", "--shard", "0/2", "--output_dir", str(tmp_path), "--quiet")
    assert first.returncode == 0, first.stderr
    assert "montage waits for 10 runs" in first.stdout and not list((tmp_path / "s10").glob("s10_*.jpg"))
    second = _run(nets, "s10", "--n_iters", "1", "--shard", "1/2", "--output_dir", str(tmp_path), "--quiet")
    assert second.returncode == 0, second.stderr
    assert len(list((tmp_path / "s10").glob("s10_*.jpg"))) == 5


def test_missing_models_are_one_line_and_nothing_is_written(tmp_path):
    proc = _run(tmp_path / "empty", "s16", "--n_iters", "1", "--output_dir", str(tmp_path / "out"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "missing model files" in proc.stderr and "places205CNN" in proc.stderr
    assert not (tmp_path / "out").exists()
