"""``dgn-am topk``: the k images of a folder or file list that drive each unit most, with montages."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..common import paths
from .imagesets import add_net_options, add_stream_options
from .progress import Bar


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("topk", help="the k images of a folder that drive each unit most (resumable)",
                       description="Run every image of --images (a folder, searched recursively, or a file "
                       "with one path per line) through the net and keep, per unit of --layer, the --k "
                       "images with the highest activation (a conv unit at --xy, or at its best position, "
                       "cropped to its receptive field). Writes topk.json, a montage per unit and "
                       "topk.manifest.json; a killed run started again goes on where it stopped.")
    add_net_options(p, "net")
    p.add_argument("--layer", default="fc8", help="blob whose units are ranked (default fc8)")
    p.add_argument("--units", required=True, help="units, e.g. 1,5,10-12")
    p.add_argument("--k", type=int, default=9, help="images per unit (default 9, as Fig. 5 shows)")
    p.add_argument("--xy", type=int, default=None, help="a conv unit's position (default: its best per image)")
    p.add_argument("--images", type=Path, required=True, help="image folder or file list")
    add_stream_options(p)
    p.add_argument("--output_dir", type=Path, required=True, help="where topk.json and the montages go")
    p.set_defaults(func=run)


def run(a: argparse.Namespace) -> int:
    from ..runs.grid import parse_ints
    from ..runs.topk import find

    with Bar(a.quiet, None, "ranking", "img") as bar:
        result = find(a.net_definition or paths.caffenet_definition(), a.net_weights or paths.caffenet_weights(),
                      a.layer, parse_ints(a.units, "--units"), a.k, a.images, a.mean, a.output_dir, xy=a.xy,
                      batch=a.batch, progress=bar.counter(), gpu=a.gpu)
    if result.resumed_at:
        print(f"resumed at image {result.resumed_at} of {result.n_images}")
    print(f"{len(result.tops)} units of {a.layer}, top {a.k} of {result.n_images} images"
          + (f" ({len(result.skipped)} unreadable, skipped: listed in the manifest)" if result.skipped else ""))
    print(f"saved {result.json} and {len(result.montages)} montages")
    return 0
