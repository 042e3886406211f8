"""``dgn-am sweep``: grid expansion, ranges, shards, TOML, bad input, and a resumable sharded sweep end to end."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dgn_am.common.errors import InputError
from dgn_am.results import gallery
from dgn_am.runs import grid, sweep

from ..conftest import run_cli

# --- pure: ranges, lists, the grid, shards, TOML -------------------------------------------------


def test_parse_ints_ranges_lists_and_duplicates():
    assert grid.parse_ints("0-3,7,2-3", "--units") == [0, 1, 2, 3, 7]
    assert grid.parse_ints([5, "1-2", " 9 "], "units") == [5, 1, 2, 9]
    assert grid.parse_ints(643, "units") == [643]
    assert grid.parse_ints("700 - 702", "units") == [700, 701, 702]


@pytest.mark.parametrize(("spec", "words"), [
    ("9-3", ["'9-3'", "backwards"]), ("a", ["'a'", "not a whole number"]), ("1,,2", ["empty item"]),
    ("-1", ["'-1'"]), ("1-", ["'1-'"]), (-4, ["negative"]), ([], ["empty"]), ("0-99999999", ["more than a sweep's"]),
    (True, ["True"]), (1.5, ["1.5"]),
])
def test_parse_ints_errors(spec, words):
    with pytest.raises(InputError) as exc:
        grid.parse_ints(spec, "--units")
    assert "--units" in str(exc.value) and "\n" not in str(exc.value)
    for w in words:
        assert w in str(exc.value)


def test_parse_floats():
    assert grid.parse_floats("8,2", "--start_lr") == [8.0, 2.0]
    assert grid.parse_floats([0.99, 1, "0.5"], "L2") == [0.99, 1.0, 0.5]
    assert grid.parse_floats("8,8.0", "--start_lr") == [8.0]
    for bad in ("nan", "x", "1e999", [True]):
        with pytest.raises(InputError, match="--L2"):
            grid.parse_floats(bad, "--L2")


def _plan(tmp_path: Path, **flags: str) -> grid.Plan:
    return grid.plan(grid.settings({"output_dir": str(tmp_path), **flags}))


def test_grid_is_the_product_in_a_fixed_order(tmp_path):
    flags = {"units": "3,1", "seeds": "0-1", "n_iters": "5", "L2": "0.99,1", "start_lr": "8,2", "end_lr": "1e-10"}
    jobs = _plan(tmp_path, **flags).jobs
    expected = [(u, s, l2, lr) for u in (3, 1) for s in (0, 1) for l2 in (0.99, 1.0) for lr in (8.0, 2.0)]
    assert [(r.unit, r.seed, r.L2, r.start_lr) for r in jobs] == expected
    assert {(r.n_iters, r.end_lr, r.output_dir) for r in jobs} == {(5, 1e-10, tmp_path)}
    assert len({r.stem() for r in jobs}) == len(jobs)
    assert _plan(tmp_path, **flags).jobs == jobs


def test_end_lr_default_and_its_own_folders(tmp_path):
    jobs = _plan(tmp_path, units="1", start_lr="8,2").jobs
    assert [(r.start_lr, r.end_lr) for r in jobs] == [(8.0, 8.0), (2.0, 2.0)]  # no end_lr: the start_lr
    with pytest.raises(InputError, match="--end_lr must be >= 0"):
        _plan(tmp_path, units="1", start_lr="8", end_lr="-1,8")  # negative learning rates are refused
    jobs = _plan(tmp_path, units="1,2", start_lr="8", end_lr="1e-10,0.5").jobs
    # The released name has no end_lr, so each end_lr gets a folder: no two runs share a file.
    assert {r.output_dir.name for r in jobs} == {"end_lr_1e-10", "end_lr_0.5"}
    assert len({r.output_dir / r.stem() for r in jobs}) == len(jobs) == 4


def test_shards_are_disjoint_and_cover_the_grid(tmp_path):
    jobs = _plan(tmp_path, units="0-9", seeds="0-2").jobs
    assert len(jobs) == 30
    for n in (1, 2, 3, 7, 30, 31):
        parts = [grid.Shard(i, n).take(jobs) for i in range(n)]
        flat = [j for part in parts for j in part]
        assert len(flat) == len(jobs) and set(flat) == set(jobs)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert grid.parse_shard("2/5") == grid.Shard(2, 5)
    for bad in ("3/3", "5/3", "1/0", "a/b", "2", "-1/3", ""):
        with pytest.raises(InputError, match="--shard"):
            grid.parse_shard(bad)


def test_toml_values_and_flags_override_them(tmp_path):
    cfg = tmp_path / "conf" / "sweep.toml"
    cfg.parent.mkdir()
    cfg.write_text('units = "0-2"\nseeds = [0, 1]\nL2 = 0.99\nstart_lr = [8.0, 2]\noutput_dir = "res"\n'
                   'clip = true\nbound = "b.txt"\n')
    s = grid.settings({"units": "5", "L2": None, "seeds": None}, cfg)
    jobs = grid.plan(s).jobs
    assert {r.unit for r in jobs} == {5}  # the flag wins
    assert [(r.seed, r.start_lr) for r in jobs] == [(0, 8.0), (0, 2.0), (1, 8.0), (1, 2.0)]
    assert all(r.L2 == 0.99 and r.clip for r in jobs)
    assert jobs[0].output_dir == cfg.parent / "res" and jobs[0].bound == cfg.parent / "b.txt"  # relative to it
    assert s.name("units") == "--units" and "sweep.toml" in s.name("seeds")


@pytest.mark.parametrize(("text", "words"), [
    ("unit = 3\n", ["unknown key 'unit'", "did you mean 'units'"]),
    ("units = \n", ["not valid TOML"]),
    ("units = 1.5\n", ["'units' in", "1.5"]),
    ("units = 1\nopt_layer = 'fc9'\n", ["opt_layer", "fc9"]),
    ("units = 1\nbound = 3\n", ["'bound' in", "path"]),
    ("units = 1\nclip = 2\n", ["clip", "0 or 1"]),
])
def test_toml_errors(tmp_path, text, words):
    cfg = tmp_path / "s.toml"
    cfg.write_text(text)
    with pytest.raises(InputError) as exc:
        grid.plan(grid.settings({}, cfg))
    for w in words:
        assert w in str(exc.value), str(exc.value)


# --- the CLI: bad input is one line and exit 2, before anything is written -----------------------


def _fails(proc, *words: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("dgn-am: error:"), proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_cli_bad_range_toml_key_and_shard(tmp_path):
    out = tmp_path / "out"
    _fails(run_cli("sweep", "--units", "9-3", "--output_dir", str(out)), "--units", "backwards")
    cfg = tmp_path / "s.toml"
    cfg.write_text("units = 1\nlearning_rate = 2\n")
    _fails(run_cli("sweep", "--config", str(cfg), "--output_dir", str(out)), "unknown key 'learning_rate'")
    _fails(run_cli("sweep", "--units", "1", "--shard", "3/3", "--output_dir", str(out)), "--shard 3/3", "0 <= I < N")
    _fails(run_cli("sweep", "--output_dir", str(out)), "no units")
    assert not out.exists()


def test_cli_unit_out_of_range_before_any_output(models, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("sweep", "--net_weights", str(models.caffenet), "--generator_weights", str(models.generator),
                   "--units", "998-1000", "--n_iters", "1", "--output_dir", str(out))
    _fails(proc, "--unit 1000", "0..999")
    assert not out.exists() or not any(out.rglob("*"))


# --- end to end: two shards, a rerun, a partial redo -----------------------------------------------

TRICKY = "<i>tricky & co</i>"
STEMS = [f"fc8_{u:04}_01_0.99_8.0__{s}" for u in (0, 1) for s in (0, 1)]  # the grid's order


@pytest.fixture(scope="module")
def swept(models, tmp_path_factory):
    """A 2 units x 2 seeds sweep of one iteration, run as two shards; a label list names the units."""
    root = tmp_path_factory.mktemp("sweep")
    misc = root / "nets" / "released" / "misc"
    misc.mkdir(parents=True)
    names = ["mask, face", TRICKY] + [f"class {i}" for i in range(2, 1000)]
    misc.joinpath("synset_words.txt").write_text("".join(f"n{i:08} {n}\n" for i, n in enumerate(names)))
    cfg = root / "sweep.toml"
    cfg.write_text('units = "0-1"\nseeds = [0, 1]\nn_iters = 50\nL2 = 0.99\nstart_lr = 8.0\nend_lr = 1e-10\n'
                   'output_dir = "out"\n')
    args = ["sweep", "--config", str(cfg), "--n_iters", "1", "--net_weights", str(models.caffenet),
            "--generator_weights", str(models.generator)]
    procs, after_first = [], []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DGN_AM_NETS", str(root / "nets"))
        for shard in ("0/2", "1/2"):
            procs.append(run_cli(*args, "--shard", shard))
            after_first = after_first or sorted(p.name for p in (root / "out").glob("*.json"))
    return root, args, cfg, procs, after_first


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_shards_write_every_output_and_one_gallery(swept):
    root, _, _, procs, after_first = swept
    out = root / "out"
    for proc in procs:
        assert proc.returncode == 0, proc.stderr
    assert after_first == sorted(f"{STEMS[k]}.json" for k in (0, 2))  # shard 0 of 2: jobs 0 and 2
    assert "shard 0/2: 2 of 4 runs: 2 ran, 0 skipped" in procs[0].stdout
    assert f"gallery: {out / 'index.html'}" in procs[1].stdout
    assert "sweep 1/2" in procs[1].stderr and "2/2" in procs[1].stderr  # the bar over this shard's runs
    for stem in STEMS:
        for ext in ("jpg", "png", "npz", "json"):
            assert (out / f"{stem}.{ext}").is_file()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]

    page = (out / "index.html").read_text()
    assert page.count("<figure>") == 4  # both shards' results, merged from the manifests on disk
    for stem in STEMS:
        record = json.loads((out / f"{stem}.json").read_text())
        assert record["parameters"]["n_iters"] == 1  # the flag overrode the file's 50
        assert f'<img src="{stem}.png"' in page
        assert f"<b>{record['results']['final_activation']:.2f}</b>" in page
    assert "0: mask" in page and "1: &lt;i&gt;tricky &amp; co&lt;/i&gt;" in page and TRICKY not in page


def test_rerun_skips_everything_and_rewrites_nothing(swept, tmp_path, monkeypatch):
    root, args, _, _, _ = swept
    monkeypatch.setenv("DGN_AM_NETS", str(root / "nets"))  # the same labels: the same gallery
    out = tmp_path / "out"
    shutil.copytree(root / "out", out)  # copy2 keeps the mtimes
    before = _mtimes(out)
    proc = run_cli(*args, "--output_dir", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "4 runs: 0 ran, 4 skipped (already finished)" in proc.stdout
    assert _mtimes(out) == before


def test_gallery_only_rebuilds_from_manifests_and_ignores_other_json(swept, tmp_path):
    root, _, _, _, _ = swept
    out = tmp_path / "out"
    shutil.copytree(root / "out", out)
    (out / "index.html").unlink()
    (out / "example1.json").write_text('{"release": "example1", "panels": []}')
    (out / "broken.json").write_text("{")
    (out / f"{STEMS[3]}.png").unlink()  # a result without its image is not shown
    proc = run_cli("sweep", "--gallery-only", "--output_dir", str(out))
    assert proc.returncode == 0, proc.stderr
    page = (out / "index.html").read_text()
    assert page.count("<figure>") == 3 and STEMS[3] not in page
    _fails(run_cli("sweep", "--gallery-only", "--output_dir", str(tmp_path / "none")), "not a folder")


def test_redo_only_what_is_unfinished_with_the_nets_loaded_once(models, swept, tmp_path, monkeypatch):
    root, _, cfg, _, _ = swept
    out = tmp_path / "out"
    shutil.copytree(root / "out", out)
    (out / f"{STEMS[3]}.json").unlink()  # killed before its manifest: redone
    (out / f"{STEMS[1]}.npz").unlink()  # an output gone: redone
    record = json.loads((out / f"{STEMS[2]}.json").read_text())
    record["parameters"]["L2"] = 0.5  # made with other settings: refused, then (--overwrite) replaced
    (out / f"{STEMS[2]}.json").write_text(json.dumps(record))
    leftover = out / f".{STEMS[3]}.npz.abc123.tmp"  # what a SIGKILL during write_atomic leaves
    leftover.write_bytes(b"half")
    before = _mtimes(out)

    made = []

    class CountingSession(sweep.Session):
        def __init__(self, *a, **k) -> None:
            made.append(1)
            super().__init__(*a, **k)

    monkeypatch.setattr(sweep, "Session", CountingSession)
    events: list[sweep.Event] = []
    flags = {"output_dir": str(out), "n_iters": "1", "net_weights": str(models.caffenet),
             "generator_weights": str(models.generator)}
    s = grid.settings(flags, cfg)
    with pytest.raises(InputError, match=r"records a different run .*L2 0.5 \(this run: 0.99\).*--overwrite"):
        sweep.run(grid.plan(s), progress=events.append)
    assert _mtimes(out) == before and not events  # refused before any run: nothing touched
    made.clear()
    summary = sweep.run(grid.plan(s), progress=events.append, overwrite=True)

    assert len(made) == 1
    assert [r.stem() for r in summary.ran] == [STEMS[1], STEMS[2], STEMS[3]]
    assert [r.stem() for r in summary.skipped] == [STEMS[0]] and [r.stem() for r in summary.replaced] == [STEMS[2]]
    assert [(e.kind, e.run.stem()) for e in events if e.kind in ("finished", "skipped")] == [
        ("skipped", STEMS[0]), ("finished", STEMS[1]), ("finished", STEMS[2]), ("finished", STEMS[3])]
    assert sum(e.kind == "iteration" for e in events) == 3
    after = _mtimes(out)
    assert not leftover.exists()
    for ext in ("jpg", "png", "npz", "json"):
        assert after[f"{STEMS[0]}.{ext}"] == before[f"{STEMS[0]}.{ext}"]
        assert f"{STEMS[3]}.{ext}" in after
    assert after[f"{STEMS[1]}.png"] != before[f"{STEMS[1]}.png"]
    assert json.loads((out / f"{STEMS[2]}.json").read_text())["parameters"]["L2"] == 0.99
    assert gallery.write(out).read_text().count("<figure>") == 4



# --- killed, concurrent: each run made once, and a resumed sweep equals an uninterrupted one --------------

MINI = Path(__file__).resolve().parents[2]


def _mini_sweep(out: Path, *extra: str) -> list[str]:
    proto, nets = MINI / "prototxt" / "mini", MINI / "nets" / "mini"
    return [sys.executable, "-m", "dgn_am.cli", "sweep", "--units", "0-5", "--n_iters", "60", "--L2", "0.97",
            "--start_lr", "1", "--end_lr", "1e-10", "--bound", str(nets / "fc6_bounds.txt"),
            "--net_definition", str(proto / "encoder.prototxt"), "--net_weights", str(nets / "encoder.caffemodel"),
            "--generator_definition", str(proto / "generator.prototxt"),
            "--generator_weights", str(nets / "generator.caffemodel"), "--output_dir", str(out), "--quiet", *extra]


def _results(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix in (".jpg", ".png", ".npz")}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    proc = subprocess.run(_mini_sweep(out), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "6 runs: 6 ran" in proc.stdout
    return _results(out)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_sweep_resumes_to_the_same_bytes(uninterrupted, tmp_path, sig):
    out = tmp_path / "out"
    child = subprocess.Popen(_mini_sweep(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(list(out.glob("fc8_*.json"))) < 2 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(sig)
    _, err = child.communicate(timeout=120)
    finished = sorted(p.stem for p in out.glob("fc8_*.json"))
    assert 2 <= len(finished) < 6, (finished, err)
    if sig == signal.SIGTERM:
        assert child.returncode == 130 and "interrupted" in err
        assert not list(out.glob(".*.tmp")) and not list(out.glob(".*.partial"))  # unwound, nothing half-made
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.stem in finished}
    again = subprocess.run(_mini_sweep(out), capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert f"6 runs: {6 - len(finished)} ran, {len(finished)} skipped" in again.stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.stem in finished} == before  # not redone
    assert _results(out) == uninterrupted  # byte for byte, npz included
    assert not [p for p in out.iterdir() if p.name.endswith((".tmp", ".lock"))]


def test_two_sweeps_on_one_folder_make_each_run_once(uninterrupted, tmp_path):
    out = tmp_path / "out"
    procs = [subprocess.Popen(_mini_sweep(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, e) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, e
    ran = [int(re.search(r"6 runs: (\d+) ran", o).group(1)) for o, _ in outputs]
    assert sum(ran) == 6, outputs  # every run made by exactly one of them
    created = [json.loads(p.read_text())["created"] for p in out.glob("fc8_*.json")]
    assert len(created) == 6
    assert _results(out) == uninterrupted
    assert (out / "index.html").read_text().count("<figure>") == 6


def test_the_gallery_is_collected_under_its_lock(swept, tmp_path):
    """A page is built from the manifests present once the lock is held, never from an older look."""
    import threading

    from dgn_am.common import locks

    root, _, _, _, _ = swept
    out = tmp_path / "out"
    shutil.copytree(root / "out", out)
    late = out / "late"
    shutil.copytree(root / "out", late, ignore=shutil.ignore_patterns("index.html"))
    hidden = tmp_path / "hidden"
    late.rename(hidden)
    pages: list[Path] = []
    with locks.exclusive(out / gallery.LOCK):
        writer = threading.Thread(target=lambda: pages.append(gallery.write(out)))
        writer.start()
        time.sleep(0.5)
        assert writer.is_alive()  # waiting for the lock
        hidden.rename(late)  # another shard's results land while the writer waits
    writer.join(timeout=60)
    assert pages and pages[0].read_text().count("<figure>") == 8


# --- pairs of units: --pairs with a --gamma grid ------------------------------------------------------------


def test_pairs_and_gammas_join_the_grid(tmp_path):
    p = _plan(tmp_path, units="3", pairs="470:1,470:122", gamma="0,0.5", seeds="0,1")
    assert [(r.unit, r.unit2, r.gamma, r.seed) for r in p.jobs] == [
        (3, None, 0.0, 0), (3, None, 0.0, 1),
        (470, 1, 0.0, 0), (470, 1, 0.0, 1), (470, 1, 0.5, 0), (470, 1, 0.5, 1),
        (470, 122, 0.0, 0), (470, 122, 0.0, 1), (470, 122, 0.5, 0), (470, 122, 0.5, 1),
    ]
    assert "fc8_0470_and_0001_gamma0.5_10_1.0_2.0__1" in {r.stem() for r in p.jobs}
    assert len({r.stem() for r in p.jobs}) == len(p.jobs)
    only = _plan(tmp_path, pairs="470:1")  # pairs alone need no --units; gamma defaults to 0
    assert [(r.unit, r.unit2, r.gamma) for r in only.jobs] == [(470, 1, 0.0)]


def test_pairs_from_toml_as_strings_or_lists(tmp_path):
    cfg = tmp_path / "sweep.toml"
    cfg.write_text('pairs = ["470:1", [10, 122]]\ngamma = [0.25]\n')
    p = grid.plan(grid.settings({"output_dir": str(tmp_path)}, cfg))
    assert [(r.unit, r.unit2, r.gamma) for r in p.jobs] == [(470, 1, 0.25), (10, 122, 0.25)]


@pytest.mark.parametrize(("flags", "words"), [
    ({"gamma": "0.5", "units": "1"}, "needs --pairs"),
    ({"pairs": "470-1"}, "not a pair of units"),
    ({"pairs": "470:1", "gamma": "-1"}, ">= 0"),
    ({"pairs": "470:1", "gamma": "nan"}, "finite"),
    ({}, "no units given"),
])
def test_pairs_errors(tmp_path, flags, words):
    with pytest.raises(InputError, match=words):
        _plan(tmp_path, **flags)


def test_a_pair_sweep_runs_resumes_and_names_both_units(tmp_path):
    out = tmp_path / "pairs"
    args = _mini_sweep(out, "--pairs", "3:7", "--gamma", "0,1")
    args[args.index("--units") + 1] = "2"
    args[args.index("--n_iters") + 1] = "3"
    first = subprocess.run(args, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    assert "3 runs: 3 ran" in first.stdout
    names = sorted(p.name for p in out.glob("*.json"))
    assert names == ["fc8_0002_03_0.97_1.0__0.json", "fc8_0003_and_0007_gamma0.0_03_0.97_1.0__0.json",
                     "fc8_0003_and_0007_gamma1.0_03_0.97_1.0__0.json"]
    record = json.loads((out / names[2]).read_text())
    assert record["parameters"]["unit2"] == 7 and record["parameters"]["gamma"] == 1.0
    page = (out / "index.html").read_text()
    assert "unit 3 + unit 7, gamma 1.0" in page
    again = subprocess.run(args, capture_output=True, text=True, check=False)
    assert again.returncode == 0 and "0 ran" in again.stdout and "3 skipped" in again.stdout, again.stdout
