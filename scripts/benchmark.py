#!/usr/bin/env python
"""Time DGN-AM iterations (fc6 generator + CaffeNet to fc8) on random weights of the real architectures.

    .venv/bin/python scripts/benchmark.py [--iters 20] [--gpu N] [--batch 1] [--weight-grads]

Prints the median time per iteration and per stage. ``--weight-grads`` times the same nets with
lr_mult 1, i.e. with the weight gradients that the project's prototxts (lr_mult 0) let Caffe skip.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from dgn_am import caffe_backend as cb
from dgn_am.cliargs import ArgumentParser
from dgn_am.codes import random_codes
from dgn_am.objectives import OneHotObjective, Unit
from dgn_am.paths import PROTOTXT


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=20, help="timed iterations, after two warm-up ones")
    ap.add_argument("--gpu", type=int, default=None, help="GPU id (default: CPU)")
    ap.add_argument("--batch", type=int, default=1, help="images per iteration")
    ap.add_argument("--weight-grads", action="store_true", help="time the nets with lr_mult 1")
    a = ap.parse_args(argv)
    if a.iters < 1 or a.batch < 1:
        ap.error(f"--iters and --batch take whole numbers >= 1, got --iters {a.iters} --batch {a.batch}")

    device = cb.set_mode(a.gpu)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        defs = {}
        for name in ("generator_fc6", "caffenet"):
            text = (PROTOTXT / f"{name}.prototxt").read_text()
            if a.weight_grads:
                text = text.replace("lr_mult: 0", "lr_mult: 1")
            defs[name] = d / f"{name}.prototxt"
            defs[name].write_text(text)
        t0 = time.perf_counter()
        gw = cb.save_random_weights(defs["generator_fc6"], d / "g.caffemodel", 2)
        tw = cb.save_random_weights(defs["caffenet"], d / "c.caffemodel", 1)
        made = time.perf_counter() - t0
        t0 = time.perf_counter()
        gen_net, _ = cb.load_net(defs["generator_fc6"], gw)
        tgt_net, _ = cb.load_net(defs["caffenet"], tw)
        loaded = time.perf_counter() - t0

    gen, tgt = cb.CaffeGenerator(gen_net), cb.CaffeTarget(tgt_net, "fc8")
    objective = OneHotObjective([Unit(643 + b) for b in range(a.batch)])
    code = random_codes(list(range(a.batch)), 4096).astype(np.float32)
    stages: dict[str, list[float]] = {"generator forward": [], "target forward+backward": [],
                                      "generator backward": [], "iteration": []}
    for i in range(a.iters + 2):  # two warm-up iterations are not counted
        t0 = time.perf_counter()
        x0 = gen.generate(code)
        t1 = time.perf_counter()
        crop = x0[:, :, 14:241, 14:241].copy()
        _, g = tgt.activation_gradient(crop, objective)
        t2 = time.perf_counter()
        gen.code_gradient(np.zeros_like(x0) + 1e-3)
        t3 = time.perf_counter()
        if i >= 2:
            stages["generator forward"].append(t1 - t0)
            stages["target forward+backward"].append(t2 - t1)
            stages["generator backward"].append(t3 - t2)
            stages["iteration"].append(t3 - t0)
    print(f"device: {device}; batch {a.batch}; weight gradients: {'on' if a.weight_grads else 'skipped'}")
    print(f"made random caffemodels in {made:.1f} s; checked and loaded both nets in {loaded:.1f} s")
    for name, ts in stages.items():
        print(f"{name:>24}: median {statistics.median(ts) * 1000:7.1f} ms over {len(ts)} iterations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
