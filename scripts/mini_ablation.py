#!/usr/bin/env python3
"""Ablation of the miniature generator's losses: train G once per loss set, then measure each the demo's way.

    scripts/mini_ablation.py [--steps 2000] [--seeds 0,1,2,3,4] [--variants plain,image,feature,adversarial]
                             [--out_dir output/ablation] [--evaluate_only]

Variants (every other setting is ``GanConfig``'s default, so they differ only in their loss weights):

- ``plain``: DeePSiM's image loss alone, ||G(c) - x||^2 (lambda_img 1, nothing else);
- ``image``: the image losses the shipped G uses: the colour-free one plus a little of the plain one;
- ``feature``: ``image`` + the feature loss in C;
- ``adversarial``: ``feature`` + the adversarial loss against D (the shipped recipe, at ``--steps``).

For each it prints how many held-out images G reconstructs well enough for the independent classifier
(and for E) to name their class, and, over every seed, the demo's two metrics: the share of synthesized
images the independent classifier labels as their target, and the median over classes of the synthetic
activation over real held-out images' median. The last row measures the committed G (nets/mini) the
same way. Nothing is written into nets/mini: each variant trains into its own folder under ``--out_dir``
with a copy of the shipped E, bounds and labels; ``--evaluate_only`` measures the Gs trained there before
(with the shipped bounds and demo settings as they are now).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from dgn_am.common.cliargs import ArgumentParser
from dgn_am.mini import data, demo, gan, netspecs, solvers
from dgn_am.mini.data import DATA_SEED

VARIANTS: dict[str, dict[str, float]] = {
    "plain": {"lambda_img": 1.0, "lambda_shape": 0.0, "lambda_feat": 0.0, "lambda_adv": 0.0},
    "image": {"lambda_feat": 0.0, "lambda_adv": 0.0},
    "feature": {"lambda_adv": 0.0},
    "adversarial": {},
}
SHIPPED = ("encoder.caffemodel", "classifier.caffemodel", "fc6_bounds.txt", "labels.txt")


def reconstruction_accuracy(files: demo.MiniFiles, per_class: int = 30) -> tuple[float, float]:
    """Share of held-out images whose reconstruction G(E(x)) the independent classifier, and E, label right."""
    images, labels = data.make_split("heldout", per_class, DATA_SEED)
    encoder = solvers.deploy_net(netspecs.encoder(100), weights=files.nets / "encoder.caffemodel")
    codes = gan.encode_codes(encoder, images, batch=100)
    g = solvers.deploy_net(netspecs.generator(100), weights=files.nets / "generator.caffemodel")
    rec = solvers.forward_all(g, codes, "deconv0", input_blob="feat")
    judge = solvers.deploy_net(netspecs.classifier(100), weights=files.classifier[1])
    return (float(np.mean(solvers.forward_all(judge, rec, "prob").argmax(1) == labels)),
            float(np.mean(solvers.forward_all(encoder, rec, "prob").argmax(1) == labels)))


def demo_metrics(files: demo.MiniFiles, seeds: list[int], out: Path) -> tuple[float, float, list[str]]:
    """The demo, once per seed: mean share recognized, median activation ratio, and the missed classes."""
    shares, ratios, missed = [], [], []
    for seed in seeds:
        settings = dataclasses.replace(demo.DemoSettings(), seed=seed)
        classes, _ = demo.synthesize_classes(files, out / f"demo_seed{seed}", settings)
        ev = demo.evaluate_classes(files, classes)
        shares.append(ev.share)
        ratios.append(ev.median_ratio)
        missed += [r.label for r in ev.rows if not r.recognized]
    return float(np.mean(shares)), float(np.median(ratios)), missed


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--out_dir", type=Path, default=Path("output/ablation"))
    p.add_argument("--evaluate_only", action="store_true", help="measure the Gs already trained in --out_dir")
    a = p.parse_args(argv)
    variants = a.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    seeds = [int(s) for s in a.seeds.split(",") if s.strip().isdigit()]
    if len(seeds) != len(a.seeds.split(",")):
        p.error(f"--seeds takes whole numbers separated by commas, got {a.seeds!r}")
    if unknown or a.steps < 1:
        p.error(f"unknown variants {unknown} (choose from {', '.join(VARIANTS)}) or --steps < 1")
    missing = [v for v in variants if a.evaluate_only and not (a.out_dir / v / "generator.caffemodel").is_file()]
    if missing:
        p.error(f"--evaluate_only: no generator.caffemodel in {a.out_dir} for {', '.join(missing)}")
    shipped = demo.MiniFiles.default()
    rows = []
    for name in [*variants, "committed"]:
        folder = shipped.nets if name == "committed" else a.out_dir / name
        seconds = float("nan")
        if name != "committed":
            folder.mkdir(parents=True, exist_ok=True)
            for f in SHIPPED:
                shutil.copy(shipped.nets / f, folder / f)
        if name != "committed" and not a.evaluate_only:
            config = dataclasses.replace(gan.GanConfig(), steps=a.steps, **VARIANTS[name])
            started = time.perf_counter()
            gan.train_generator(folder, log=lambda line, n=name: print(f"[{n}] {line}", flush=True), config=config)
            seconds = time.perf_counter() - started
        files = demo.MiniFiles.at(folder)
        rec_judge, rec_e = reconstruction_accuracy(files)
        share, ratio, missed = demo_metrics(files, seeds, a.out_dir / name if name == "committed" else folder)
        rows.append((name, seconds, rec_judge, rec_e, share, ratio))
        print(f"[{name}] reconstructions: judge {rec_judge:.0%}, E {rec_e:.0%}; demo over seeds {a.seeds}: "
              f"judge {share:.0%}, median activation ratio {ratio:.2f}; missed {missed}", flush=True)
    print(f"\n| G | train s | recon. judge | recon. E | demo judge ({len(seeds)} seeds) | act. ratio |")
    print("|---|---|---|---|---|---|")
    for name, seconds, rj, re_, share, ratio in rows:
        print(f"| {name} | {'-' if np.isnan(seconds) else f'{seconds:.0f}'} | {rj:.0%} | {re_:.0%} | {share:.0%} "
              f"| {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
