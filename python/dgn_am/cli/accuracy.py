"""``dgn-am accuracy``: per-class top-1/top-5 accuracy of a net over a labelled image folder (S10's captions)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..common import paths
from .imagesets import add_net_options, add_stream_options
from .progress import Bar


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("accuracy", help="per-class top-1/top-5 accuracy of a net over a labelled image folder",
                       description="Classify every image of --images (a folder per class, named as --labels "
                       "names the classes, or a flat folder with --label_file) and write accuracy.csv and "
                       "accuracy.json to --output_dir. Unreadable images are listed and skipped.")
    add_net_options(p, "classifier")
    p.add_argument("--layer", default="fc8", help="blob with one score per class (default fc8)")
    p.add_argument("--images", type=Path, required=True, help="labelled image folder")
    p.add_argument("--labels", type=Path, required=True,
                   help="class names, one per line (line k names class k), e.g. nets/mini/labels.txt")
    p.add_argument("--label_file", type=Path, default=None,
                   help="'path label' per line (label: class index or name; paths relative to --images)")
    add_stream_options(p)
    p.add_argument("--output_dir", type=Path, required=True, help="where accuracy.csv and accuracy.json go")
    p.set_defaults(func=run)


def run(a: argparse.Namespace) -> int:
    from ..runs.accuracy import measure

    with Bar(a.quiet, None, "classifying", "img") as bar:
        result = measure(a.net_definition or paths.caffenet_definition(), a.net_weights or paths.caffenet_weights(),
                         a.layer, a.images, a.labels, a.mean, a.output_dir, label_file=a.label_file,
                         batch=a.batch, progress=bar.counter(), gpu=a.gpu)
    n = sum(result.total.values())
    print(f"{n} images of {sum(1 for c in result.total.values() if c)} classes: top-1 {100 * result.overall(1):.2f} %, "
          f"top-5 {100 * result.overall(5):.2f} %")
    if result.skipped:
        print(f"skipped {len(result.skipped)} unreadable images (listed in {result.json}):")
        for _, reason in result.skipped[:10]:
            print(f"  {reason}")
    print(f"saved {result.csv} and {result.json}")
    return 0
