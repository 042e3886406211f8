"""``dgn-am act-range``: per-unit code bounds, mean + k std of a layer over a folder of images."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..common import paths


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("act-range", help="per-unit code bounds (mean + k std of a layer) over an image folder",
                       description="Write an act_range bound file: per unit of --layer, mean + k * std of its "
                       "activations over every image in --images (--k 3 makes the released act_range/3x kind).")
    p.add_argument("--net_definition", type=Path, default=None, help="encoder prototxt (default CaffeNet)")
    p.add_argument("--net_weights", type=Path, default=None, help="encoder caffemodel (default CaffeNet)")
    p.add_argument("--layer", default="fc6", help="blob whose units are bounded (default fc6, post-ReLU)")
    p.add_argument("--images", type=Path, required=True, help="folder of images (png, jpg, ...; others ignored)")
    p.add_argument("--k", type=float, default=3.0, help="standard deviations above the mean (default 3)")
    p.add_argument("--mean", default="imagenet",
                   help="'imagenet' (subtract the ImageNet mean image) or a number subtracted from every pixel")
    p.add_argument("--decimals", type=int, default=0, help="digits kept (default 0: integers, as released)")
    p.add_argument("--output", type=Path, required=True, help="bound file to write (one line)")
    p.set_defaults(func=run)


def run(a: argparse.Namespace) -> int:
    from ..runs.actrange import compute

    result = compute(a.net_definition or paths.caffenet_definition(), a.net_weights or paths.caffenet_weights(),
                     a.layer, a.images, a.k, a.mean, a.output, decimals=a.decimals)
    print(f"{a.layer}: mean + {a.k:g} std of {len(result.bounds)} units over {result.n_images} images; "
          f"bounds {result.bounds.min():.2f}..{result.bounds.max():.2f} (mean {result.bounds.mean():.2f})")
    print(f"saved {result.output}")
    return 0
