"""The rules every user-named file and every output obey, without Caffe: reading, writing, locking, records.

Each test here stands for a class of bad input from issue 9: a FIFO or device where a file belongs, a
symlink loop, a decompression bomb, a folder where a result goes, a symlink to an input, a full disk,
two processes on one run, a manifest of another run, a grid of 10**9 runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dgn_am.common import locks
from dgn_am.common.errors import InputError, read_input, regular_file
from dgn_am.common.files import check_destination, write_atomic
from dgn_am.results import manifest
from dgn_am.results.images import MAX_PIXELS, read_image
from dgn_am.results.outputs import npz_bytes
from dgn_am.runs import grid
from dgn_am.runs.run import MAX_ITERS, Run, check_value, validate

from ..conftest import png_claiming

# --- reading user files ----------------------------------------------------------------------------


@pytest.fixture
def odd_files(tmp_path) -> dict[str, Path]:
    """A FIFO, a folder, a symlink loop, a dangling link and an unreadable file, each where a file belongs."""
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.txt"
    folder.mkdir()
    loop = tmp_path / "loop.txt"
    loop.symlink_to(loop)
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "nowhere")
    return {"fifo": fifo, "folder": folder, "loop": loop, "dangling": dangling, "device": Path("/dev/zero"),
            "missing": tmp_path / "missing.txt"}


@pytest.mark.parametrize(("kind", "words"), [
    ("fifo", "not a regular file"), ("device", "not a regular file"), ("folder", "is a folder"),
    ("loop", "symlink loop"), ("dangling", "does not exist"), ("missing", "does not exist"),
])
@pytest.mark.parametrize("binary", [False, True])
def test_read_input_refuses_what_is_not_a_regular_file(odd_files, kind, words, binary):
    started = time.perf_counter()
    with pytest.raises(InputError, match=words):
        read_input(odd_files[kind], "bound file", binary=binary)
    assert time.perf_counter() - started < 2  # a FIFO or /dev/zero never blocks or fills memory


def test_read_input_limits_and_text(tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"1 " * 600)
    with pytest.raises(InputError, match="more than the 1,000"):
        read_input(big, "bound file", limit=1000)
    latin = tmp_path / "labels.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_input(latin, "label file")
    assert read_input(latin, "label file", binary=True) == "caf\xe9\n".encode("latin-1")
    good = tmp_path / "ok.txt"
    good.write_text("3 4\n")
    assert read_input(good, "bound file") == "3 4\n"
    assert regular_file(good, "x") == good


@pytest.mark.parametrize(("size", "words"), [
    ((100_000, 100_000), "decompression bomb"),  # PIL's own bomb error
    ((8_500, 8_000), "more than the"),  # above MAX_PIXELS, below PIL's limit
    ((9_000, 9_999), "decompression bomb"),  # between MAX_PIXELS and PIL's warning
])
def test_image_bombs_are_refused_from_the_header(tmp_path, size, words):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(*size))
    started = time.perf_counter()
    with pytest.raises(InputError, match=words):
        read_image(path, "init image")
    assert time.perf_counter() - started < 2
    assert size[0] * size[1] > MAX_PIXELS


def test_read_image_damage_and_odd_files(tmp_path, odd_files):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((5, 7, 3), dtype=np.uint8)).save(good)
    assert read_image(good).shape == (5, 7, 3)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:40])
    text = tmp_path / "text.jpg"
    text.write_text("hello")
    for path, words in ((cut, "not a readable image"), (text, "not a readable image"),
                        (odd_files["fifo"], "not a regular file"), (odd_files["loop"], "symlink loop")):
        with pytest.raises(InputError, match=words):
            read_image(path, "init image")


# --- writing outputs ----------------------------------------------------------------------------------


def test_check_destination(tmp_path):
    check_destination(tmp_path / "new.png")  # absent: fine
    (tmp_path / "old.png").write_bytes(b"x")
    check_destination(tmp_path / "old.png")  # a file of an earlier result: fine
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(InputError, match="in the way"):
        check_destination(tmp_path / "dir.png")
    target = tmp_path / "input.jpg"
    target.write_bytes(b"data")
    (tmp_path / "link.json").symlink_to(target)
    with pytest.raises(InputError, match="symlink"):
        check_destination(tmp_path / "link.json")
    hard = tmp_path / "hard.json"
    os.link(target, hard)
    with pytest.raises(InputError, match="also an input"):
        check_destination(hard, [target])
    with pytest.raises(InputError, match="too long"):
        check_destination(tmp_path / ("x" * 250 + ".png"))
    (tmp_path / "frames").write_text("not a folder")
    with pytest.raises(InputError, match="not a folder of frames"):
        check_destination(tmp_path / "frames", kind="folder")


def test_write_atomic_never_replaces_a_folder_or_symlink(tmp_path):
    (tmp_path / "a.png").mkdir()
    with pytest.raises(InputError, match="in the way"):
        write_atomic(tmp_path / "a.png", b"x")
    keep = tmp_path / "keep.txt"
    keep.write_text("mine")
    (tmp_path / "b.json").symlink_to(keep)
    with pytest.raises(InputError, match="symlink"):
        write_atomic(tmp_path / "b.json", b"{}")
    assert keep.read_text() == "mine" and (tmp_path / "b.json").is_symlink()


def test_write_atomic_under_a_file_size_limit_leaves_nothing(tmp_path):
    # ulimit -f: the kernel refuses the write part-way (Python ignores SIGXFSZ, so it is an OSError)
    code = (
        "import resource, sys; from pathlib import Path; from dgn_am.common.files import write_atomic\n"
        "from dgn_am.common.errors import InputError\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        f"try:\n    write_atomic(Path({str(tmp_path / 'big.npz')!r}), b'x' * 100000)\n"
        "except InputError as e:\n    print(e); sys.exit(2)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "cannot write" in proc.stdout and "file-size limit" in proc.stdout and "\n" == proc.stdout[-1]
    assert list(tmp_path.iterdir()) == []  # no partial file, no temporary


def test_npz_bytes_are_deterministic_and_load():
    arrays = {"code": np.arange(6, dtype=np.float32).reshape(1, 6), "activations": np.array([1.5, 2.5])}
    first = npz_bytes(**arrays)
    time.sleep(1.1)  # np.savez would stamp another second into the zip
    assert npz_bytes(**arrays) == first
    import io

    with np.load(io.BytesIO(first)) as z:
        assert sorted(z.files) == ["activations", "code"]
        np.testing.assert_array_equal(z["code"], arrays["code"])
    # Plain zip headers with the real sizes (no zip64 placeholders): their layout is the same in every
    # Python, so the image's Python 3.11.2 and a host's 3.11.7 write the same bytes.
    import struct
    import zipfile

    for info in zipfile.ZipFile(io.BytesIO(first)).infolist():
        assert info.extract_version == 20 and info.extra == b"", (info.filename, info.extract_version)
        local = first[info.header_offset:info.header_offset + 30]
        assert struct.unpack("<II", local[18:26]) == (info.file_size, info.file_size)


# --- locks ------------------------------------------------------------------------------------------


def test_lock_is_exclusive_and_removed(tmp_path):
    path = tmp_path / ".run.lock"
    with locks.exclusive(path, wait=False):
        assert path.exists()
        with pytest.raises(locks.Busy):
            with locks.exclusive(path, wait=False):
                pass
    assert not path.exists()
    with locks.exclusive(path, wait=False):  # free again
        pass


def test_lock_of_a_killed_process_is_not_stale(tmp_path):
    path = tmp_path / ".run.lock"
    code = ("import sys, time; from pathlib import Path; from dgn_am.common import locks\n"
            f"with locks.exclusive(Path({str(path)!r})):\n    print('held', flush=True); time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(locks.Busy):
            with locks.exclusive(path, wait=False):
                pass
        child.kill()  # SIGKILL: no cleanup ran, the lock file is still there
        child.wait()
        assert path.exists()
        with locks.exclusive(path, wait=False):  # the kernel dropped the lock with the process
            assert path.read_text().split()[0] == str(os.getpid())
    finally:
        child.kill()
        child.wait()


# --- numbers and grids ------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "value", "words"), [
    ("L2", 1.5, "(0, 1]"), ("L2", 0.0, "(0, 1]"), ("L2", -0.5, "(0, 1]"), ("L2", float("nan"), "finite"),
    ("start_lr", -1.0, "> 0"), ("start_lr", 0.0, "> 0"), ("start_lr", float("inf"), "finite"),
    ("end_lr", -1e-10, ">= 0"), ("gamma", -0.1, ">= 0"), ("n_iters", 0, "between 1"),
    ("n_iters", 10**12, "between 1"), ("n_iters", MAX_ITERS + 1, "100,000"), ("seed", 2**32, "2**32"),
    ("seed", -1, "2**32"), ("unit", -3, ">= 0"), ("x", -1, ">= 0"), ("unit", True, "whole number"),
    ("L2", "0.5", "finite number"),
])
def test_check_value_names_the_allowed_range(key, value, words):
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        check_value(key, value)


def test_check_value_accepts_the_released_settings():
    for key, value in (("L2", 0.99), ("L2", 1.0), ("start_lr", 8.0), ("end_lr", 1e-10), ("end_lr", 0.0),
                       ("n_iters", 200), ("n_iters", MAX_ITERS), ("seed", 2**32 - 1), ("gamma", 0.0)):
        check_value(key, value)
    validate(Run(unit=643, n_iters=200, L2=0.99, start_lr=8.0, end_lr=1e-10))
    with pytest.raises(InputError, match="--gamma needs --unit2"):
        validate(Run(unit=1, gamma=0.5))
    with pytest.raises(InputError, match="--opt_layer"):
        validate(Run(unit=1, opt_layer="fc9"))


def test_a_grid_of_a_billion_runs_is_refused_at_once(tmp_path):
    s = grid.settings({"units": "0-999", "seeds": "0-999", "start_lr": ",".join(str(i + 1) for i in range(1000)),
                        "output_dir": str(tmp_path)})
    started = time.perf_counter()
    with pytest.raises(InputError, match="1,000,000,000 runs"):
        grid.plan(s)
    assert time.perf_counter() - started < 0.5
    with pytest.raises(InputError, match="more than a sweep's"):
        grid.parse_ints("0-999999999", "--units")


@pytest.mark.parametrize(("flags", "words"), [
    ({"L2": "0.99,1.5"}, ["--L2", "(0, 1]"]), ({"start_lr": "-8"}, ["--start_lr", "> 0"]),
    ({"end_lr": "-1"}, ["--end_lr", ">= 0"]), ({"n_iters": "1000000000000"}, ["--n_iters", "100,000"]),
    ({"seeds": "4294967296"}, ["--seeds", "2**32"]),
])
def test_sweep_lists_obey_the_same_ranges(tmp_path, flags, words):
    with pytest.raises(InputError) as exc:
        grid.plan(grid.settings({"units": "1", "output_dir": str(tmp_path), **flags}))
    for w in words:
        assert w in str(exc.value)


def test_sweep_without_end_lr_uses_each_start_lr(tmp_path):
    jobs = grid.plan(grid.settings({"units": "1", "start_lr": "8,2", "output_dir": str(tmp_path)})).jobs
    assert [(r.start_lr, r.end_lr) for r in jobs] == [(8.0, 8.0), (2.0, 2.0)]


# --- is it the same run? -------------------------------------------------------------------------------


def test_differences_name_the_settings_and_models(tmp_path):
    run = Run(unit=5, opt_layer="fc6", bound=tmp_path / "b.txt", output_dir=tmp_path)
    models = {"target": {"definition_sha256": "a" * 64, "weights_sha256": "b" * 64}}
    record = {"parameters": manifest.plain_parameters(
        {**vars(run), "opt_layer": "fc7", "output_dir": "/elsewhere", "debug": True}), "models": models}
    assert manifest.differences(record, vars(run), models) == ["opt_layer 'fc7' (this run: 'fc6')"]
    other = {"target": {"definition_sha256": "a" * 64, "weights_sha256": "c" * 64}}
    diffs = manifest.differences(record, vars(run), other)
    assert "target weights sha256 bbbbbbbbbbbb (this run: cccccccccccc)" in diffs
    not_a_record = manifest.differences(["not", "a", "record"], vars(run), models)
    assert not_a_record == ["the manifest is not a dgn-am run record"]
