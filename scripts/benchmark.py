#!/usr/bin/env python
"""How fast DGN-AM runs here: fc6 generator + CaffeNet to fc8, on random weights of the real architectures.

    .venv/bin/python scripts/benchmark.py [--batches 1,4,16,64] [--workflow-iters 200] [--gpu N]
                                          [--skip-workflow] [--skip-jobs] [--drift-iters 0]
                                          [--drift-batch 4] [--drift-only] [--real-only]

Prints, in one run:
- the time per iteration and per image-iteration at each batch size (each in its own process, so its
  peak memory is its own), with stock arithmetic, with patch 0007's oneDNN convolutions at batches
  above 1 (``DGN_AM_CAFFE_DNNL=1``, what ``--batch`` runs) and with ``DGN_AM_CAFFE_FAST=1`` (CPU only); and at
  batch 1 with patch 0006 off (``sgemm``) and also with every weight gradient on (``sgemm+wg``, what
  Caffe did before patch 0005), to show each patch's effect;
- this machine's sgemm rate, and the floor it sets (6.7 GFLOP per image-iteration, FACTS §8);
- example 1's workflow (5 units x N iterations, L2 0.99, lr 8 -> 1e-10, a bound file) as five
  ``dgn-am synthesize`` processes vs one ``dgn-am sweep --batch 5``, in images per hour;
- one 2-thread sweep process vs ``--jobs 2`` (two 1-thread workers) on the same runs;
- the estimated wall time of a 1000-unit fc8 sweep at the best batch;
- with ``--drift-iters N``: how far batched trajectories drift from runs alone by iteration N;
- ``dgn-am topk``'s images per second over 10,000 miniature images and 300 made 256 x 256 ones for CaffeNet
  (``--real-only``: only that).
Timings are medians; the machine is shared, so compare figures from one run, not across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dgn_am.common.cliargs import ArgumentParser

ROOT = Path(__file__).resolve().parents[1]
UNITS = (643, 624, 304, 629, 437)  # example 1 (FACTS §6)
FLOP_PER_IMAGE_ITERATION = 6.7e9  # the least work an iteration must do (FACTS §8)


def _models(folder: Path) -> tuple[Path, Path, Path]:
    from dgn_am import backend as cb

    c = cb.save_random_weights(ROOT / "prototxt/caffenet.prototxt", folder / "caffenet.caffemodel", 1)
    g = cb.save_random_weights(ROOT / "prototxt/generator_fc6.prototxt", folder / "generator.caffemodel", 2)
    bound = folder / "bound.txt"  # like act_range/3x/fc6.txt: 4096 integers, mean about 12
    bound.write_text(" ".join(str(v) for v in np.random.default_rng(0).integers(1, 24, 4096)) + "\n")
    return c, g, bound


def _nets(folder: Path):  # noqa: ANN202 - the generator and CaffeNet as the algorithm sees them
    from dgn_am import backend as cb

    gen_net, _ = cb.load_net(ROOT / "prototxt/generator_fc6.prototxt", folder / "generator.caffemodel", backward=True)
    net, _ = cb.load_net(ROOT / "prototxt/caffenet.prototxt", folder / "caffenet.caffemodel", backward=True)
    return cb.CaffeGenerator(gen_net), cb.CaffeTarget(net, "fc8")


def _child(batch: int, iters: int, folder: Path, gpu: int | None) -> dict:
    """Time ``iters`` iterations of one batch (after one warm-up) in this process."""
    from dgn_am import backend as cb
    from dgn_am.core.algorithm import Settings, optimize
    from dgn_am.core.codes import random_codes
    from dgn_am.core.objectives import OneHotObjective, Unit

    cb.set_mode(gpu)
    gen, target = _nets(folder)
    if os.environ.get(WEIGHT_GRADIENTS_ENV) == "1":  # as before patch 0005: force_backward's every gradient
        for net in (gen.net, target.net):
            cb.set_weight_gradients(net, True)
    objective = OneHotObjective([Unit((643 + 7 * b) % 1000) for b in range(batch)])
    code = random_codes(list(range(batch)), 4096)
    times: list[float] = []
    last = [time.perf_counter()]

    def tick(it: object) -> None:
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    optimize(gen, target, objective, code, Settings(iters + 1, 8.0, 1e-10, L2=0.99), tick)
    per = statistics.median(times[1:])
    return {"batch": batch, "iteration_s": per, "image_iteration_s": per / batch,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


WEIGHT_GRADIENTS_ENV = "DGN_AM_BENCHMARK_WEIGHT_GRADIENTS"  # this script's own switch, for the child

# The arithmetic of a timed child: (DGN_AM_CAFFE_FAST, DGN_AM_CAFFE_STOCK, weight gradients on,
# DGN_AM_CAFFE_DNNL).
MODES = {
    "stock": ("0", "0", "0", "0"),      # the default at batch 1: stock Caffe's bits (0005, 0006, 0008 on)
    "oneDNN": ("0", "0", "0", "1"),     # what --batch N > 1 runs: patch 0007's batched convolutions
    "fast": ("1", "0", "0", "0"),       # patch 0003's gemv: other bits
    "sgemm": ("0", "1", "0", "0"),      # patch 0006 off: one-row products through sgemm
    "sgemm+wg": ("0", "1", "1", "0"),   # 0006 off and every weight gradient computed: the build before both
}


def _run_child(batch: int, iters: int, folder: Path, gpu: int | None, mode: str) -> dict:
    fast, stock, weight_gradients, dnnl = MODES[mode]
    env = dict(os.environ, DGN_AM_CAFFE_FAST=fast, DGN_AM_CAFFE_STOCK=stock, DGN_AM_CAFFE_DNNL=dnnl,
               GLOG_minloglevel="2")
    env[WEIGHT_GRADIENTS_ENV] = weight_gradients
    args = [sys.executable, __file__, "--child", str(batch), str(iters), str(folder)]
    args += ["--gpu", str(gpu)] if gpu is not None else []
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def sgemm_rate() -> float:
    """GFLOP/s of a 4096^3 float32 matrix product, with NumPy's BLAS (median of 5)."""
    a = np.random.default_rng(0).standard_normal((4096, 4096), dtype=np.float32)
    a @ a
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        a @ a
        ts.append(time.perf_counter() - t)
    return 2 * 4096**3 / statistics.median(ts) / 1e9


def _cli(*args: str, threads: int | None = None) -> float:
    env = dict(os.environ, GLOG_minloglevel="2")
    if threads is not None:
        env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(threads)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dgn_am.cli", *args, "--quiet"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def _common(c: Path, g: Path, bound: Path, iters: int) -> list[str]:
    return ["--net_weights", str(c), "--generator_weights", str(g), "--n_iters", str(iters), "--L2", "0.99",
            "--start_lr", "8", "--end_lr", "1e-10", "--bound", str(bound)]


def workflow(c: Path, g: Path, bound: Path, iters: int, folder: Path) -> None:
    one = 0.0
    for unit in UNITS:
        one += _cli("synthesize", "--unit", str(unit), *_common(c, g, bound, iters), "--output_dir", str(folder / "a"))
    units = ",".join(str(u) for u in UNITS)
    batched = _cli("sweep", "--units", units, *_common(c, g, bound, iters), "--batch", "5", "--output_dir",
                   str(folder / "b"))
    print(f"\nexample 1's workflow, 5 units x {iters} iterations:")
    print(f"  five synthesize processes: {one:7.1f} s = {5 * 3600 / one:7.1f} images/hour")
    print(f"  one sweep --batch 5:       {batched:7.1f} s = {5 * 3600 / batched:7.1f} images/hour "
          f"({one / batched:.2f}x)")
    a = np.load(next((folder / "a").glob("fc8_0643_*.npz")))["image"]
    b = np.load(next((folder / "b").glob("fc8_0643_*.npz")))["image"]
    print(f"  unit 643's image, batched vs alone: max |difference| {np.abs(a - b).max():.3g} (0-255 scale)")


def jobs(c: Path, g: Path, bound: Path, folder: Path) -> None:
    units = "0-7"
    args = ("sweep", "--units", units, *_common(c, g, bound, 10))
    threaded = [_cli(*args, "--output_dir", str(folder / f"t{k}"), threads=2) for k in range(2)]
    workers = [_cli(*args, "--jobs", "2", "--output_dir", str(folder / f"w{k}")) for k in range(2)]
    t, w = statistics.median(threaded), statistics.median(workers)
    print(f"\n8 runs x 10 iterations, batch 1: one 2-thread process {t:.1f} s, --jobs 2 (1 thread each) {w:.1f} s "
          f"({t / w:.2f}x)")


def drift(folder: Path, iters: int, batch: int = 4, compared: int = 4) -> None:
    """Images and activations of a batch vs the same runs alone (its first ``compared``), up to ``iters``."""
    from dgn_am import backend as cb
    from dgn_am.core.algorithm import Settings, optimize
    from dgn_am.core.codes import random_code
    from dgn_am.core.objectives import OneHotObjective, PerSample, Unit

    cb.set_mode(None)
    gen, target = _nets(folder)
    units = [UNITS[b] if b < len(UNITS) else (7 * b) % 1000 for b in range(batch)]
    starts = np.concatenate([random_code(b // len(UNITS), (1, 4096)) for b in range(batch)])
    compared = min(compared, batch)
    settings = Settings(iters, 8.0, 1e-10, L2=0.99)
    marks = sorted({1, 2, 5, 10, 20, 50, 100, 200, iters} & set(range(1, iters + 1)))

    def record(objective, start):  # noqa: ANN001, ANN202 - the image fed to the net and the unit's value
        seen: dict[int, tuple[np.ndarray, np.ndarray]] = {}

        def keep(it) -> None:  # noqa: ANN001
            if it.index + 1 in marks:
                seen[it.index + 1] = (it.image.copy(), np.array(it.activations))
        optimize(gen, target, objective, start, settings, keep)
        return seen

    with cb.batched_convolution(batch) as convolution:  # as --batch runs it
        together = record(PerSample([OneHotObjective([Unit(u)]) for u in units]), starts)
    alone = [record(OneHotObjective([Unit(u)]), starts[b : b + 1]) for b, u in enumerate(units[:compared])]
    print(f"\ndrift of a batch of {batch} (units {', '.join(map(str, units))}; {convolution} convolutions) from "
          f"its first {compared} runs alone, {iters} iterations, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}:")
    print(f"{'iteration':>9} {'max |image diff| / image range':>31} {'max rel activation diff':>24}")
    for n in marks:
        img = max(float(np.abs(together[n][0][b] - alone[b][n][0][0]).max() / np.ptp(alone[b][n][0][0]))
                  for b in range(compared))
        act = max(float(abs(together[n][1][b] - alone[b][n][1][0]) / max(abs(alone[b][n][1][0]), 1e-12))
                  for b in range(compared))
        print(f"{n:>9} {img:>31.3g} {act:>24.3g}")


def real_images(folder: Path, caffenet: Path, gpu: int | None) -> None:
    """Issue 14: ``topk``'s images per second, over 10,000 miniature images and over made 256 x 256 images."""
    from PIL import Image

    from dgn_am.mini import data
    from dgn_am.runs import topk

    mini = folder / "mini_train"
    n = data.export(mini, "train", 1000)
    t = time.perf_counter()
    topk.find(ROOT / "prototxt/mini/encoder.prototxt", ROOT / "nets/mini/encoder.caffemodel", "fc8", list(range(10)),
              9, mini, "128", folder / "topk_mini", batch=100)
    mini_s = time.perf_counter() - t
    made = folder / "made"
    made.mkdir()
    rng = np.random.default_rng(0)
    for i in range(300):
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(made / f"{i:04d}.png")
    t = time.perf_counter()
    topk.find(ROOT / "prototxt/caffenet.prototxt", caffenet, "fc8", list(range(10)), 9, made, "imagenet",
              folder / "topk_caffenet", batch=50)
    caffenet_s = time.perf_counter() - t
    where = "CPU" if gpu is None else f"GPU {gpu}"
    print(f"\nreal images (dgn-am topk, decoding in a worker thread; {where}):")
    print(f"  miniature E, {n} images 64 x 64:       {n / mini_s:7.0f} images/s ({mini_s:.1f} s)")
    print(f"  CaffeNet, 300 made images 256 x 256:  {300 / caffenet_s:7.1f} images/s ({caffenet_s:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", default="1,4,16,64", help="batch sizes to time (default 1,4,16,64)")
    ap.add_argument("--workflow-iters", type=int, default=200, help="iterations of the 5-unit workflow")
    ap.add_argument("--skip-workflow", action="store_true", help="leave out the 5-unit workflow")
    ap.add_argument("--skip-jobs", action="store_true", help="leave out threads vs worker processes")
    ap.add_argument("--drift-iters", type=int, default=0, help="also measure batched drift up to N iterations")
    ap.add_argument("--drift-batch", type=int, default=4, help="the batch whose drift is measured (default 4)")
    ap.add_argument("--drift-only", action="store_true", help="only measure the drift")
    ap.add_argument("--real-only", action="store_true", help="only time topk over real-image folders (issue 14)")
    ap.add_argument("--gpu", type=int, default=None, help="GPU id (default: CPU)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(_child(int(a.child[0]), int(a.child[1]), Path(a.child[2]), a.gpu)))
        return 0
    try:
        sizes = [int(b) for b in a.batches.split(",")]
    except ValueError:
        ap.error(f"--batches takes whole numbers separated by commas, got {a.batches!r}")
    if any(b < 1 for b in sizes) or a.workflow_iters < 1 or a.drift_iters < 0 or a.drift_batch < 1:
        ap.error("--batches, --workflow-iters take whole numbers >= 1 and --drift-iters >= 0")

    from dgn_am import backend as cb

    device = cb.set_mode(a.gpu)
    info = cb.build_info()
    print(f"device: {device}; Caffe build {info.get('key')} with patches {', '.join(info.get('patches', []))}")
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, cores {os.cpu_count()}")
    if a.drift_only:
        with tempfile.TemporaryDirectory() as tmp:
            _models(Path(tmp))
            drift(Path(tmp), a.drift_iters or 200, a.drift_batch)
        return 0
    if a.real_only:
        with tempfile.TemporaryDirectory() as tmp:
            c, _, _ = _models(Path(tmp))
            real_images(Path(tmp), c, a.gpu)
        return 0
    rate = sgemm_rate()
    floor = FLOP_PER_IMAGE_ITERATION / (rate * 1e9)
    print(f"sgemm (NumPy, 4096^3): {rate:.0f} GFLOP/s; floor {floor * 1000:.1f} ms per image-iteration")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        c, g, bound = _models(folder)
        print(f"\n{'batch':>5} {'arithmetic':>10} {'s/iteration':>12} {'s/image-it':>11} {'x floor':>8} "
              f"{'peak MB':>8}")
        best = None
        rows = [("stock", b) for b in sizes]
        if a.gpu is None:  # the other arithmetic; each patch's effect at batch 1, where 0006 acts
            rows += [("oneDNN", b) for b in sizes if b > 1] if cb.dnnl_built() else []
            rows += [("fast", b) for b in sizes] + [("sgemm", 1), ("sgemm+wg", 1)]
        for mode, b in rows:
            iters = max(3, int(12 / b**0.5))
            r = _run_child(b, iters, folder, a.gpu, mode)
            if mode in ("stock", "oneDNN", "fast"):
                best = r if best is None or r["image_iteration_s"] < best["image_iteration_s"] else best
            print(f"{b:>5} {mode:>10} {r['iteration_s']:>12.3f} "
                  f"{r['image_iteration_s']:>11.4f} {r['image_iteration_s'] / floor:>8.2f} {r['peak_mb']:>8.0f}")
        assert best is not None
        hours = 1000 * 200 * best["image_iteration_s"] / 3600
        print(f"\n1000-unit fc8 sweep x 200 iterations at batch {best['batch']}: about {hours:.1f} h of wall time "
              f"({best['image_iteration_s']:.4f} s per image-iteration)")
        if not a.skip_workflow and a.gpu is None:
            workflow(c, g, bound, a.workflow_iters, folder)
        if not a.skip_jobs and a.gpu is None:
            jobs(c, g, bound, folder)
        if a.drift_iters:
            drift(folder, a.drift_iters, a.drift_batch)
        real_images(folder, c, a.gpu)
    return 0


if __name__ == "__main__":
    sys.exit(main())
