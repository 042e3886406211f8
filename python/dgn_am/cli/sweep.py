"""``dgn-am sweep``: units x seeds x a hyperparameter grid, resumable and sharded, with a gallery."""

from __future__ import annotations

import argparse
from pathlib import Path

from .progress import Bar, duration

_SWEEP_EPILOG = """\
Every list flag takes a comma list (--units and --seeds also ranges: 0-9,643,700-799); the grid is the product
of the targets (each of --units alone, and each of --pairs with each --gamma), --seeds, --n_iters, --L2,
--start_lr and --end_lr. --config FILE.toml takes the same keys at its
top level (lists allowed, paths relative to the file); flags override it.

At most 100,000 runs per grid. Resumable: a run whose manifest (.json, written last) records the same settings
and model files is skipped; a run without one is redone; a different run under the same file name is refused
unless --overwrite. A lock per run keeps concurrent shards from making one run twice. A run that ends in NaN
is reported (exit 1) and the sweep goes on. Shards: --shard I/N takes jobs I, I+N, I+2N, ... (I from 0), e.g.
  SLURM (sbatch --array=0-9):       --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT
  Kubernetes indexed Job (10 completions): --shard $JOB_COMPLETION_INDEX/10
Each shard rewrites OUTPUT_DIR/index.html from every result on disk; --gallery-only just rebuilds it.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run DGN-AM over units x seeds x a hyperparameter grid (resumable, sharded)",
                       description="Synthesize many units in one process that loads the nets once.",
                       epilog=_SWEEP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=None, help="TOML file with these flags' names as keys")
    p.add_argument("--units", "--unit", default=None, help="units, with ranges: 0-9,643,700-799")
    p.add_argument("--pairs", default=None, metavar="U:V,...",
                   help="pairs of units driven at once, a1 + a2 - gamma |a1 - a2| (synthesize's --unit2), "
                   "e.g. 470:1,470:122")
    p.add_argument("--gamma", default=None, help="with --pairs: the weights of the pairs' difference (default 0)")
    p.add_argument("--seeds", "--seed", default=None, help="seeds of the random start code (default 0)")
    p.add_argument("--n_iters", default=None, help="iterations (default 10)")
    p.add_argument("--L2", default=None, help="code decay factors (default 1.0)")
    p.add_argument("--start_lr", default=None, help="learning rates at iteration 0 (default 2.0)")
    p.add_argument("--end_lr", default=None, help="final learning rates (default: each run's start_lr)")
    p.add_argument("--act_layer", default=None, help="blob of the target net holding the units (default fc8)")
    p.add_argument("--opt_layer", default=None, choices=["fc6", "fc7", "pool5"], help="code layer (default fc6)")
    p.add_argument("--xy", type=int, default=None, help="spatial position for conv units (x = y = xy)")
    p.add_argument("--x", type=int, default=None, help="column of conv units (default --xy)")
    p.add_argument("--y", type=int, default=None, help="row of conv units (default --xy)")
    p.add_argument("--clip", type=int, default=None, choices=[0, 1], help="1: clip the code to [-1, 1]")
    p.add_argument("--bound", default=None, help="file of per-unit upper bounds for the code (act_range)")
    p.add_argument("--init_file", default=None, help="start every run from this image's code")
    p.add_argument("--output_dir", default=None, help="where the results and index.html go (default .)")
    for name in ("net_definition", "net_weights", "generator_definition", "generator_weights",
                 "encoder_definition", "encoder_weights"):
        p.add_argument(f"--{name}", default=None, help=f"as for synthesize ({name.replace('_', ' ')})")
    p.add_argument("--gpu", type=int, default=None, metavar="N", help="run on CUDA device N (CUDA builds only)")
    p.add_argument("--shard", default=None, metavar="I/N", help="run only part I (from 0) of N of the grid")
    p.add_argument("--batch", type=int, default=1, metavar="N",
                   help="compatible runs sharing each forward/backward pass (default 1: each run bit-identical to "
                   "the released algorithm; N > 1 is faster and agrees to float32 rounding, see README)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="worker processes sharing the runs, each with cores/N BLAS threads (default 1)")
    p.add_argument("--gallery-only", action="store_true", help="only rebuild OUTPUT_DIR/index.html")
    p.add_argument("--overwrite", action="store_true",
                   help="replace results the folder holds of other runs under the same file names (default: refuse)")
    p.add_argument("--labels", default=None, metavar="FILE",
                   help="names of the target's units, one per line (line k names unit k): shown in the gallery")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(a: argparse.Namespace) -> int:
    import signal

    from ..assets.labels import read_labels
    from ..results import gallery
    from ..runs import grid, sweep

    shard = grid.parse_shard(a.shard) if a.shard is not None else grid.Shard()
    settings = grid.settings({k: getattr(a, k) for k in grid.KEYS}, a.config)
    if a.gallery_only:
        labels_file = settings.get("labels")
        labels = read_labels(Path(labels_file)) if labels_file else None
        print(f"gallery: {gallery.write(Path(settings.get('output_dir')), labels=labels)}")
        return 0
    plan = grid.plan(settings)
    bar = Bar(a.quiet, None, "sweep" if shard.count == 1 else f"sweep {shard}", "run")
    skipped = [0]

    def progress(ev: sweep.Event) -> None:
        bar.total = ev.jobs
        r = ev.run
        if ev.kind == "iteration" and ev.iteration is not None:
            it = ev.iteration
            bar.step(0, refresh=True, unit=r.unit, seed=r.seed, it=f"{it.index + 1}/{it.n_iters}",
                     act=f"{it.activations[0]:.2f}")
        elif ev.kind == "finished" and ev.outcome is not None:
            bar.step(unit=r.unit, seed=r.seed, act=f"{ev.outcome.activations[-1]:.2f}")
        elif ev.kind == "skipped":
            skipped[0] += 1
            bar.step(skipped=skipped[0])
        elif ev.kind in ("busy", "failed"):
            bar.step(unit=r.unit, seed=r.seed, last=ev.kind)

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SLURM and Kubernetes stop jobs with SIGTERM: unwind, no temporaries left

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        with bar:
            if a.jobs == 1:
                summary = sweep.run(plan, shard, progress, overwrite=a.overwrite, batch=a.batch,
                                    estimate_saving=not a.quiet)
            else:
                from ..runs import workers

                summary = workers.run(plan, shard, a.jobs, progress, overwrite=a.overwrite, batch=a.batch)
    finally:
        signal.signal(signal.SIGTERM, previous)
    done = len(summary.ran) + len(summary.skipped) + len(summary.busy) + len(summary.failed)
    part = f"shard {shard}: {done} of {summary.grid} runs" if shard.count > 1 else f"{summary.grid} runs"
    replaced = f" ({len(summary.replaced)} replaced results of other runs)" if summary.replaced else ""
    busy = f", {len(summary.busy)} left to another process making them" if summary.busy else ""
    failed = f", {len(summary.failed)} FAILED" if summary.failed else ""
    print(f"{part}: {len(summary.ran)} ran{replaced}, {len(summary.skipped)} skipped (already finished){busy}{failed}")
    for _, reason in summary.failed:
        print(f"  failed: {reason}")
    saving = summary.saving
    if saving is not None and saving.batched < saving.alone:
        print(f"batching: --batch {saving.batch} would make these runs in about {duration(saving.seconds(True))} "
              f"instead of {duration(saving.seconds(False))} (timed on these nets: {saving.alone:.3f} vs "
              f"{saving.batched:.3f} s per image-iteration); the default --batch 1 keeps every run bit-identical "
              "to the released algorithm, a batch agrees with it to float32 rounding (README)")
    elif saving is not None:
        print(f"batching: --batch {saving.batch} would not save time here (timed on these nets: {saving.alone:.3f} "
              f"s per image-iteration alone, {saving.batched:.3f} batched); keep the default --batch 1")
    print(f"gallery: {summary.gallery}")
    return 1 if summary.failed else 0
