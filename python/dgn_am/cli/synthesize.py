"""``dgn-am synthesize``: one unit, with act_max.py's options."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .progress import Bar


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synthesize", help="run DGN-AM for one unit (act_max.py's options)",
                       description="Synthesize the preferred input of one unit with DGN-AM.")
    p.add_argument("--unit", type=int, required=True, help="unit index (fc: flat index; conv: channel)")
    p.add_argument("--n_iters", type=int, default=10, help="iterations (default 10)")
    p.add_argument("--L2", type=float, default=1.0, help="code decay factor in (0, 1] (default 1: no decay)")
    p.add_argument("--start_lr", type=float, default=2.0, help="learning rate at iteration 0")
    p.add_argument("--end_lr", type=float, default=None, help="learning rate approached at the end (default: start_lr)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random start code")
    p.add_argument("--xy", type=int, default=0, help="spatial position for conv units (x = y = xy)")
    p.add_argument("--x", type=int, default=None, help="column of a conv unit (default --xy)")
    p.add_argument("--y", type=int, default=None, help="row of a conv unit (default --xy)")
    p.add_argument("--unit2", type=int, default=None, help="a second unit of --act_layer to drive at once")
    p.add_argument("--gamma", type=float, default=0.0, help="with --unit2: maximize a1 + a2 - gamma |a1 - a2|")
    p.add_argument("--opt_layer", default="fc6", choices=["fc6", "fc7", "pool5"],
                   help="code layer: which generator, and which encoder blob a start image goes to")
    p.add_argument("--act_layer", default="fc8", help="blob of the target net holding the unit")
    p.add_argument("--init_file", default="", help="start from this image's code instead of a random one")
    p.add_argument("--debug", type=int, default=0, choices=[0, 1], help="1: save every iteration's image")
    p.add_argument("--clip", type=int, default=0, choices=[0, 1], help="1: clip the code to [-1, 1]")
    p.add_argument("--bound", default="", help="file of per-unit upper bounds for the code (act_range)")
    p.add_argument("--output_dir", default=".", help="where the results go")
    p.add_argument("--net_definition", type=Path, default=None, help="target net prototxt (default CaffeNet)")
    p.add_argument("--net_weights", type=Path, default=None, help="target net caffemodel")
    p.add_argument("--generator_definition", type=Path, default=None, help="generator prototxt")
    p.add_argument("--generator_weights", type=Path, default=None, help="generator caffemodel")
    p.add_argument("--encoder_definition", type=Path, default=None, help="encoder for --init_file (CaffeNet)")
    p.add_argument("--encoder_weights", type=Path, default=None, help="encoder caffemodel")
    p.add_argument("--gpu", type=int, default=None, metavar="N", help="run on CUDA device N (CUDA builds only)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a different run that the output folder holds under the same file name")
    p.add_argument("--labels", type=Path, default=None, metavar="FILE",
                   help="names of the target's units, one per line (line k names unit k): shown and recorded")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(a: argparse.Namespace) -> int:
    from ..assets.labels import label_of, read_labels
    from ..assets.models import MODEL_ROLES, default_models, downloadable, require
    from ..runs.run import Run, check_value
    from ..runs.session import synthesize

    models = default_models(a.opt_layer, a.gpu, **{role: getattr(a, role) for role in MODEL_ROLES})
    run = Run(
        unit=a.unit, n_iters=a.n_iters, L2=a.L2, start_lr=a.start_lr,
        end_lr=a.start_lr if a.end_lr is None else a.end_lr, seed=a.seed,
        x=a.xy if a.x is None else a.x, y=a.xy if a.y is None else a.y,
        opt_layer=a.opt_layer, act_layer=a.act_layer, clip=bool(a.clip), debug=bool(a.debug),
        init_file=Path(a.init_file) if a.init_file else None, bound=Path(a.bound) if a.bound else None,
        output_dir=Path(a.output_dir), unit2=a.unit2, gamma=a.gamma,
    )
    require(downloadable(models, run.init_file, run.bound))
    if a.x is None or a.y is None:
        check_value("xy", a.xy)
    labels = read_labels(a.labels) if a.labels else None

    bar = Bar(a.quiet, a.n_iters, f"{a.act_layer} {label_of(labels, a.unit)}", "it")
    start = time.perf_counter()
    with bar:
        out = synthesize(models, run, lambda it: bar.step(act=f"{it.activations[0]:.2f}", lr=f"{it.lr:.3g}"),
                         overwrite=a.overwrite, labels=labels)
    seconds = time.perf_counter() - start
    named = f" ({labels[a.unit]})" if labels and a.unit in labels else ""
    print(f"unit {a.unit}{named} of {a.act_layer}: activation {out.activations[-1]:.2f} after {out.iterations} "
          f"iterations ({seconds:.1f} s, {out.device})")
    if out.stop is not None:
        print(f"stopped early after iteration {out.stop.iteration + 1} of {a.n_iters}: {out.stop.reason} "
              "(the released algorithm ends a run there)")
    print(f"saved {out.paths['jpg']}")
    return 0
