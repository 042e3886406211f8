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
from dgn_am.runs import figure_runs, figures

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


PAIR_FIGURES = {"fig4": (470, (1, 122)), "s11": (470, (1, 122, 945, 968, 846)),
                "s12": (10, (1, 30, 381, 353, 983))}


@pytest.mark.parametrize("name", sorted(PAIR_FIGURES))
def test_pair_figures_put_each_unit_alone_over_a_row_of_pairs_per_gamma(tmp_path, name):
    unit, partners = PAIR_FIGURES[name]
    fig = figures.select(name)
    assert (fig.units, fig.partners, fig.gammas, fig.columns) == ((unit,), partners, (0.0, 0.5, 1.0),
                                                                  len(partners) + 1)
    [(montage, cells)] = fig.groups()
    assert montage == name  # one montage, named as the figure
    runs = fig.runs(tmp_path)
    alone = [(r.unit, r.unit2, r.gamma) for r in runs[: len(partners) + 1]]
    assert alone == [(u, None, 0.0) for u in (unit, *partners)]
    assert [(r.unit, r.unit2, r.gamma) for r in runs[len(partners) + 1 :]] == [
        (unit, p, g) for g in (0.0, 0.5, 1.0) for p in partners]
    assert {(r.act_layer, r.opt_layer, r.seed, r.bound.name) for r in runs} == {("fc8", "fc6", 0, "fc6.txt")}
    assert len({r.stem() for r in runs}) == len(runs) == len(cells)
    assert fig.provenance["units"].startswith("chosen:") and "not the paper's" in fig.provenance["units"]
    assert fig.provenance["gamma"].startswith("chosen: unpublished (synthesizing issue #4)")
    assert fig.provenance["objective"].startswith("paper: Eq. 2 two-neuron objective; never released")
    assert "a1 + a2 - gamma * |a1 - a2|" in fig.provenance["objective"]
    other = fig.with_gammas([2, 0.25, 2])
    assert other.gammas == (2.0, 0.25) and other.provenance["gamma"].startswith("chosen: given with --gamma")
    assert {r.gamma for r in other.runs(tmp_path) if r.unit2 is not None} == {2.0, 0.25}
    with pytest.raises(InputError, match="must be >= 0"):
        fig.with_gammas([0.5, -1])
    with pytest.raises(InputError, match="--units does not apply"):
        fig.with_units([3])


def test_gamma_is_only_for_pair_figures_and_pair_tiles_name_both_units():
    with pytest.raises(InputError, match="--gamma applies only to fig4, s11, s12"):
        figures.select("s18").with_gammas([0.5])
    fig = figures.select("fig4")
    names = {470: "candle", 1: "goldfish"}
    assert figure_runs._name(fig, ("fc6", "fc8", 0, 470, 0, 1, 0.5), None, names) == "candle + goldfish, gamma 0.5"
    assert figure_runs._name(fig, ("fc6", "fc8", 0, 470, 0, None, 0.0), None, names) == "candle"


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


@pytest.mark.parametrize("name", sorted(PAIR_FIGURES))
def test_pair_figures_dry_run_prints_unit2_and_gamma(nets, tmp_path, name):
    unit, partners = PAIR_FIGURES[name]
    proc = _run(nets, name, "--dry-run", "--output_dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("dgn-am synthesize")]
    assert len(lines) == len(set(lines)) == (len(partners) + 1) + 3 * len(partners)
    pairs = [ln for ln in lines if "--unit2" in ln]
    assert len(pairs) == 3 * len(partners) and all(f"--unit {unit} " in ln for ln in pairs)
    found = {(int(ln.split("--unit2 ")[1].split()[0]), ln.split("--gamma ")[1].split()[0]) for ln in pairs}
    assert found == {(p, g) for p in partners for g in ("0.0", "0.5", "1.0")}
    assert "#   gamma: chosen: unpublished" in proc.stdout and not (tmp_path / name).exists()
    other = _run(nets, name, "--dry-run", "--gamma", "0.25,2", "--output_dir", str(tmp_path))
    assert other.returncode == 0, other.stderr
    assert {ln.split("--gamma ")[1].split()[0] for ln in other.stdout.splitlines() if "--unit2" in ln} == {
        "0.25", "2.0"}


@pytest.mark.parametrize(("args", "message"), [
    (("s18", "--gamma", "0.5"), "--gamma applies only to fig4, s11, s12"),
    (("fig4", "--gamma=-1"), "--gamma must be >= 0"),
    (("fig4", "--gamma", "lots"), "'lots' is not a number"),
    (("s11", "--units", "3"), "--units does not apply"),
])
def test_pair_figure_options_refuse_bad_input_in_one_line(nets, tmp_path, args, message):
    proc = _run(nets, *args, "--dry-run", "--output_dir", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert "dgn-am synthesize" not in proc.stdout


def test_fig4_runs_end_to_end_with_its_gamma_grid(nets, tmp_path):
    proc = _run(nets, "fig4", "--n_iters", "2", "--batch", "4", "--output_dir", str(tmp_path), "--quiet")
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "fig4"
    record = json.loads((folder / "fig4.json").read_text())
    assert record["gamma"] == [0.0, 0.5, 1.0] and record["partners"] == [1, 122] and record["units"] == [470]
    assert record["provenance"] == figures.select("fig4").provenance and record["shortened"]
    assert record["montages"] == ["fig4.jpg"] and record["waiting_for_runs"] == 0 and len(record["runs"]) == 9
    gammas = set()
    for path in record["runs"]:
        params = json.loads((folder / path).read_text())["parameters"]
        if params.get("unit2") is not None:
            assert params["unit"] == 470
            gammas.add((params["unit2"], params["gamma"]))
    assert gammas == {(p, g) for p in (1, 122) for g in (0.0, 0.5, 1.0)}
    with Image.open(folder / "fig4.jpg") as im:  # 3 columns (470, 1, 122 alone), then a row per gamma
        assert im.size == (3 * 229, 4 * (229 + 22))
        blank = np.asarray(im.convert("L"))[251 + 20 : 251 + 209, 20:209]  # the gap under 470 alone
        assert blank.min() > 240
    page = (folder / "index.html").read_text()
    assert page.count("<figure>") == 9 and page.count(", gamma 0.5</span>") == 2  # each pair card names its gamma
    again = _run(nets, "fig4", "--n_iters", "2", "--output_dir", str(tmp_path), "--quiet")
    assert again.returncode == 0 and "0 ran, 9 skipped" in again.stdout, again.stdout


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
