"""``dgn-am figure NAME``: one of the paper's figures, its runs resumable and sharded, its montage labelled."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .progress import Bar


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..runs.figures import recipes

    p = sub.add_parser("figure", help="make one of the paper's figures: its runs, montages and record",
                       description="Run every image of a figure of the paper (resumable, sharded and batched like "
                       "sweep) and draw its montages. Settings the paper never published are chosen, and the "
                       "output and the figure's record say which.")
    p.add_argument("name", choices=sorted(recipes()), metavar="NAME", help=f"one of {', '.join(recipes())}")
    p.add_argument("--output_dir", type=Path, default=Path("output/figures"), help="the figure goes in OUTPUT_DIR/NAME")
    p.add_argument("--dry-run", action="store_true", help="print each image's dgn-am synthesize line and stop")
    p.add_argument("--units", default=None, help="other units for the figure's layout (a comma list, ranges allowed); "
                   "not for the two-unit figures fig4, s11, s12, whose partners go with their unit (sweep --pairs "
                   "makes other pairs)")
    p.add_argument("--gamma", default=None, metavar="G,...",
                   help="fig4, s11, s12 only: the gamma grid of a1 + a2 - gamma |a1 - a2|, a row of pairs per value "
                   "(default 0,0.5,1; the paper's is unpublished)")
    p.add_argument("--n_iters", type=int, default=None,
                   help="shorten every run to N iterations for a quick check (the figure is then no reproduction)")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="runs sharing each forward/backward pass")
    p.add_argument("--shard", default=None, metavar="I/N", help="run only part I (from 0) of N of the runs")
    p.add_argument("--net_definition", type=Path, default=None, help="target prototxt (default: the figure's net)")
    p.add_argument("--net_weights", type=Path, default=None, help="target caffemodel (default: the figure's net)")
    p.add_argument("--generator_definition", type=Path, default=None, help="generator prototxt")
    p.add_argument("--generator_weights", type=Path, default=None, help="generator caffemodel")
    p.add_argument("--labels", type=Path, default=None, metavar="FILE",
                   help="names of the units, one per line (default: the net's downloaded class list)")
    p.add_argument("--images", type=Path, default=None, metavar="DIR",
                   help="fig5, s16, s10: the real half from this image folder (fig5/s16: the images that drive each "
                   "unit most, beside the synthetic ones; s10: class accuracy over a labelled folder, with --labels)")
    p.add_argument("--mean", default="imagenet",
                   help="with --images: 'imagenet' (the ImageNet mean image) or a number subtracted from every pixel")
    p.add_argument("--gpu", type=int, default=None, metavar="N", help="run on CUDA device N (CUDA builds only)")
    p.add_argument("--overwrite", action="store_true", help="replace results of other runs under the same names")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(a: argparse.Namespace) -> int:
    from ..assets.labels import labels_for_net, read_labels
    from ..assets.models import Models, downloadable, net_models, require
    from ..runs import figure_runs, grid, sweep
    from ..runs.figures import select
    from ..runs.releases import command
    from ..runs.run import check_value

    fig = select(a.name)
    if a.units is not None:
        fig = fig.with_units(grid.parse_ints(a.units, "--units"))
    if a.gamma is not None:
        fig = fig.with_gammas(grid.parse_floats(a.gamma, "--gamma"))
    if a.n_iters is not None:
        check_value("n_iters", a.n_iters)
    shard = grid.parse_shard(a.shard) if a.shard is not None else grid.Shard()
    def models_of(opt_layer: str) -> Models:
        return net_models(fig.net, a.gpu, opt_layer, net_definition=a.net_definition, net_weights=a.net_weights,
                          generator_definition=a.generator_definition, generator_weights=a.generator_weights)

    folder = a.output_dir / fig.name
    print(f"# {fig.name}: {fig.title}")
    for key, source in fig.provenance.items():
        print(f"#   {key}: {source}")
    runs = fig.runs(folder, a.n_iters)
    if a.dry_run:
        for r in runs:
            print(command(models_of(r.opt_layer), r))
        return 0
    for opt in dict.fromkeys(r.opt_layer for r in runs):
        require(downloadable(models_of(opt), None, next(r.bound for r in runs if r.opt_layer == opt)))
    labels = read_labels(a.labels) if a.labels else None
    bar = Bar(a.quiet, None, f"figure {fig.name}", "run")

    def progress(ev: sweep.Event) -> None:
        bar.total = ev.jobs
        if ev.kind in ("finished", "skipped", "busy", "failed"):
            bar.step(unit=ev.run.unit, seed=ev.run.seed, last=ev.kind)

    with bar:
        result = figure_runs.make(fig, a.output_dir, models_of, shard, progress, overwrite=a.overwrite, batch=a.batch,
                                  labels=labels, n_iters=a.n_iters, class_names=labels_for_net(fig.net),
                                  images=a.images, mean=a.mean, labels_file=a.labels)
    s = result.summary
    print(f"{fig.name}: {len(s.ran)} ran, {len(s.skipped)} skipped (already finished), {len(s.failed)} failed "
          f"of {s.grid} runs")
    for montage_path in result.montages:
        print(f"montage: {montage_path}")
    if result.waiting:
        print(f"montage waits for {result.waiting} runs (other shards, or failed ones)")
    if a.n_iters is not None and a.n_iters != fig.n_iters:
        print(f"{fig.name} is NOT a reproduction: it ran {a.n_iters} iterations instead of {fig.n_iters}.")
    real = json.loads(result.record.read_text()).get("real")
    if isinstance(real, str):
        print(f"real half: {real}")
    elif real:
        print(f"real half ({real['real_half']}): " + ", ".join(real.get("side_by_side") or [real.get("report", "")]))
    print(f"record: {result.record}")
    print(f"gallery: {s.gallery}")
    return 1 if s.failed else 0
