"""``dgn-am demo``: DGN-AM on every class of the miniature model, offline, with a montage and a gallery."""

from __future__ import annotations

import argparse
from pathlib import Path

from .progress import Bar


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..mini.demo import DemoSettings

    p = sub.add_parser("demo", help="DGN-AM on every class of the miniature model (offline): montage + gallery",
                       description="Synthesize the preferred image of every class of the miniature encoder E "
                       "through the miniature generator G, and write a labelled montage and a gallery.")
    p.add_argument("--output_dir", type=Path, default=Path("output/demo"), help="where results go")
    p.add_argument("--evaluate", action="store_true",
                   help="also report how many images an independent classifier recognizes (exit 1 below 80%%) "
                   "and each class's activation against real held-out images")
    p.add_argument("--n_iters", type=int, default=DemoSettings.n_iters,
                   help=f"iterations per class (default {DemoSettings.n_iters})")
    p.add_argument("--model_dir", type=Path, default=None,
                   help="the miniature weights, bounds and labels (default: the committed nets/mini; "
                   "'python -m dgn_am.mini.train all --out_dir DIR' makes another)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace results of other settings or models under the same file names (default: refuse)")
    p.add_argument("--batch", type=int, default=1, metavar="N",
                   help="classes sharing each forward/backward pass (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(a: argparse.Namespace) -> int:
    import dataclasses

    from ..mini.demo import DemoSettings, MiniFiles, run_demo

    settings = dataclasses.replace(DemoSettings(), n_iters=a.n_iters)
    bar = Bar(a.quiet, None, "demo", "it")

    def progress(k: int, n: int, it) -> None:  # noqa: ANN001 - algorithm.Iteration
        bar.total = n * it.n_iters
        bar.step(cls=k, act=f"{it.activations[0]:.2f}")

    files = MiniFiles.default() if a.model_dir is None else MiniFiles.at(a.model_dir)
    with bar:
        result = run_demo(a.output_dir, settings, evaluate_=a.evaluate, progress=progress, files=files,
                          overwrite=a.overwrite, batch=a.batch)
    s = result.settings
    print(f"DGN-AM on {len(result.classes)} classes of the miniature model: {s.n_iters} iterations each, "
          f"lr {s.start_lr:g} -> {s.end_lr:g}, L2 {s.L2:g}, seed {s.seed} ({result.seconds:.1f} s, {result.device})")
    print(f"{'class':<14} {'activation':>10}")
    for c in result.classes:
        print(f"{c.label:<14} {c.activation:>10.2f}")
    print(f"montage: {result.montage}")
    print(f"gallery: {result.gallery}")
    ev = result.evaluation
    if ev is None:
        return 0
    recognized = sum(r.recognized for r in ev.rows)
    print(f"\n{'class':<14} {'synthetic':>9} {'real median':>11} {'ratio':>6}  classifier says (p target)")
    for r in ev.rows:
        print(f"{r.label:<14} {r.synthetic:>9.2f} {r.real_median:>11.2f} {r.ratio:>6.2f}  "
              f"{r.predicted} ({r.probability:.2f})")
    print(f"real medians over {ev.heldout_images} held-out images; median ratio {ev.median_ratio:.2f}")
    print(f"independent classifier: {ev.share:.0%} ({recognized}/{len(ev.rows)}) of the synthesized images "
          f"labelled as their target class (threshold {ev.threshold:.0%})")
    print("PASS" if ev.passed else "FAIL: below the threshold")
    return 0 if ev.passed else 1
