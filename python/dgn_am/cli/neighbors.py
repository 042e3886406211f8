"""``dgn-am neighbors``: each synthetic result's nearest real image of its class, by pixels and by layer (S22)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..common import paths
from .imagesets import add_net_options, add_stream_options
from .progress import Bar


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("neighbors", help="the nearest real image of each synthetic result, per space (S22)",
                       description="For every run in --results, find the real image of the same class (from "
                       "the labelled folder --images) nearest to it in pixel space and in the code of each "
                       "--layers blob; writes a strip per result and neighbors.json with the distances.")
    p.add_argument("--results", type=Path, required=True, help="a folder of dgn-am results (their manifests)")
    p.add_argument("--images", type=Path, required=True, help="labelled image folder (as dgn-am accuracy reads)")
    p.add_argument("--labels", type=Path, required=True, help="class names, one per line (line k names class k)")
    p.add_argument("--label_file", type=Path, default=None, help="'path label' per line, for a flat folder")
    add_net_options(p, "net")
    p.add_argument("--layers", default="fc6,fc7,fc8", help="blobs whose codes are compared (default fc6,fc7,fc8)")
    add_stream_options(p)
    p.add_argument("--output_dir", type=Path, required=True, help="where the strips and neighbors.json go")
    p.set_defaults(func=run)


def run(a: argparse.Namespace) -> int:
    from ..common.errors import InputError
    from ..runs.neighbors import find

    layers = [x.strip() for x in a.layers.split(",") if x.strip()]
    if not layers:
        raise InputError("--layers is empty")
    if a.batch < 1:
        raise InputError(f"--batch must be at least 1, got {a.batch}")
    with Bar(a.quiet, None, "searching", "img") as bar:
        result = find(a.net_definition or paths.caffenet_definition(), a.net_weights or paths.caffenet_weights(),
                      a.results, a.images, a.labels, layers, a.mean, a.output_dir, label_file=a.label_file,
                      batch=a.batch, progress=bar.counter(), gpu=a.gpu)
    for name, spaces in result.nearest.items():
        print(f"{name}: " + ", ".join(f"{s} {d:.1f} ({Path(p).name})" for s, (p, d) in spaces.items()))
    print(f"saved {result.json} and {len(result.strips)} strips")
    return 0
