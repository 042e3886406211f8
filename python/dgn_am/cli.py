"""The ``dgn-am`` command: parse, validate, call the library, report. Nothing else lives here."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import paths
from .cliargs import ArgumentParser
from .errors import InputError


def _synthesize_parser(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_synthesize)


def _download_parser(sub: argparse._SubParsersAction) -> None:
    from .download import GROUPS

    p = sub.add_parser("download", help="fetch and verify the pretrained models and released data")
    p.add_argument("groups", nargs="*", default=None, metavar="GROUP",
                   help=f"what to fetch: {', '.join(sorted(GROUPS))} (default: all)")
    p.add_argument("--nets_dir", type=Path, default=None, help="where models go (default nets/ or $DGN_AM_NETS)")
    p.set_defaults(func=_run_download)


def _reproduce_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="rerun the authors' released examples and build their montages")
    p.add_argument("examples", nargs="+", metavar="EXAMPLE", help="example1 ... example5, or all")
    p.add_argument("--output_dir", type=Path, default=Path("output/reproduce"), help="where montages and runs go")
    p.add_argument("--gpu", type=int, default=None, metavar="N", help="run on CUDA device N")
    p.add_argument("--dry-run", action="store_true", help="print each panel's dgn-am synthesize line and stop")
    p.add_argument("--compare", action="store_true", help="compare each montage with the released image")
    p.add_argument("--n_iters", type=int, default=None,
                   help="shorten every panel to N iterations for a quick check (the result is then no reproduction)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace panels made with other settings or models (default: refuse)")
    p.add_argument("--batch", type=int, default=1, metavar="N",
                   help="panels sharing each forward/backward pass (default 1: bit-identical to the released runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_reproduce)


def _compare_parser(sub: argparse._SubParsersAction) -> None:
    from .compare import PSNR_MIN, SSIM_MIN, TRAJECTORY_MAX_REL

    p = sub.add_parser("compare", help="compare a result montage with a reference, panel by panel")
    p.add_argument("result", type=Path)
    p.add_argument("reference", type=Path)
    p.add_argument("--example", default=None, help="released layout to split by (default: from the result's "
                   "manifest, else from the image size)")
    p.add_argument("--json", type=Path, default=None, help="report file (default RESULT.compare.json)")
    p.add_argument("--ssim_min", type=float, default=SSIM_MIN)
    p.add_argument("--psnr_min", type=float, default=PSNR_MIN)
    p.add_argument("--trajectory_max_rel", type=float, default=TRAJECTORY_MAX_REL)
    p.set_defaults(func=_run_compare)


_SWEEP_EPILOG = """\
Every list flag takes a comma list (--units and --seeds also ranges: 0-9,643,700-799); the grid is the product
of --units, --seeds, --n_iters, --L2, --start_lr and --end_lr. --config FILE.toml takes the same keys at its
top level (lists allowed, paths relative to the file); flags override it.

At most 100,000 runs per grid. Resumable: a run whose manifest (.json, written last) records the same settings
and model files is skipped; a run without one is redone; a different run under the same file name is refused
unless --overwrite. A lock per run keeps concurrent shards from making one run twice. A run that ends in NaN
is reported (exit 1) and the sweep goes on. Shards: --shard I/N takes jobs I, I+N, I+2N, ... (I from 0), e.g.
  SLURM (sbatch --array=0-9):       --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT
  Kubernetes indexed Job (10 completions): --shard $JOB_COMPLETION_INDEX/10
Each shard rewrites OUTPUT_DIR/index.html from every result on disk; --gallery-only just rebuilds it.
"""


def _sweep_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run DGN-AM over units x seeds x a hyperparameter grid (resumable, sharded)",
                       description="Synthesize many units in one process that loads the nets once.",
                       epilog=_SWEEP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=None, help="TOML file with these flags' names as keys")
    p.add_argument("--units", "--unit", default=None, help="units, with ranges: 0-9,643,700-799")
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
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_sweep)


def _act_range_parser(sub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(func=_run_act_range)


def _demo_parser(sub: argparse._SubParsersAction) -> None:
    from .mini.demo import DemoSettings

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
    p.set_defaults(func=_run_demo)


def _layers_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("layers", help="list a net's blobs: shape, units, receptive field, target or code layer",
                       description="List every blob of a Caffe net in order: its shape, how many units it has "
                       "(channels of a spatial blob), the receptive field of one unit on the input image (size, "
                       "stride and offset of unit 0, before clipping), and whether it can be a target layer "
                       "(--act_layer) or a code layer (--opt_layer) of dgn-am.")
    p.add_argument("definition", type=Path, metavar="NET.prototxt", help="the net definition")
    p.add_argument("--weights", type=Path, default=None,
                   help="a caffemodel to check against the net first (default: none, the definition alone)")
    p.set_defaults(func=_run_layers)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = ArgumentParser(
        prog="dgn-am", description="Synthesize the preferred input of a neuron of a Caffe net through a deep "
        "generator network (DGN-AM: Nguyen, Dosovitskiy, Yosinski, Brox and Clune, NIPS 2016), step for step as "
        "the authors' released code ran it; reproduce their released examples, sweep units, and inspect nets. "
        "Each command's --help lists its options and their defaults.")
    parser.add_argument("--version", action="version", version=f"dgn-am {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _synthesize_parser(sub)
    _sweep_parser(sub)
    _reproduce_parser(sub)
    _compare_parser(sub)
    _download_parser(sub)
    _act_range_parser(sub)
    _demo_parser(sub)
    _layers_parser(sub)
    return parser


class Bar:
    """A tqdm bar on stderr that appears at its first step, so a run refused by its checks prints one line.

    ``restart`` begins a new bar (the next panel of a reproduction); ``quiet`` shows nothing at all.
    """

    def __init__(self, quiet: bool, total: int | None, desc: str, unit: str) -> None:
        self.quiet, self.total, self.desc, self.unit = quiet, total, desc, unit
        self.bar = None

    def restart(self, total: int | None, desc: str) -> None:
        self.close()
        self.total, self.desc = total, desc

    def step(self, n: int = 1, refresh: bool = False, **postfix: object) -> None:
        """Advance by ``n`` (0: only show ``postfix``, refreshed at once when ``refresh``)."""
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc=self.desc, unit=self.unit, file=sys.stderr)
        if postfix:
            self.bar.set_postfix(postfix, refresh=refresh)
        if n:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _run_synthesize(a: argparse.Namespace) -> int:
    from .download import describe_missing, missing
    from .synthesize import Models, Run, check_value, synthesize

    models = Models(
        net_definition=a.net_definition or paths.caffenet_definition(),
        net_weights=a.net_weights or paths.caffenet_weights(),
        generator_definition=a.generator_definition or paths.generator_definition(a.opt_layer),
        generator_weights=a.generator_weights or paths.generator_weights(a.opt_layer),
        encoder_definition=a.encoder_definition or paths.caffenet_definition(),
        encoder_weights=a.encoder_weights or paths.caffenet_weights(),
        gpu=a.gpu,
    )
    run = Run(
        unit=a.unit, n_iters=a.n_iters, L2=a.L2, start_lr=a.start_lr,
        end_lr=a.start_lr if a.end_lr is None else a.end_lr, seed=a.seed,
        x=a.xy if a.x is None else a.x, y=a.xy if a.y is None else a.y,
        opt_layer=a.opt_layer, act_layer=a.act_layer, clip=bool(a.clip), debug=bool(a.debug),
        init_file=Path(a.init_file) if a.init_file else None, bound=Path(a.bound) if a.bound else None,
        output_dir=Path(a.output_dir), unit2=a.unit2, gamma=a.gamma,
    )
    needed = [models.net_weights, models.generator_weights] + ([models.encoder_weights] if run.init_file else [])
    if run.bound and paths.is_under_nets(run.bound):
        needed.append(run.bound)  # a released act_range file that `dgn-am download` would fetch
    if missing(needed):
        raise InputError(describe_missing(missing(needed)))
    if a.x is None or a.y is None:
        check_value("xy", a.xy)

    bar = Bar(a.quiet, a.n_iters, f"{a.act_layer} unit {a.unit}", "it")
    start = time.perf_counter()
    with bar:
        out = synthesize(models, run, lambda it: bar.step(act=f"{it.activations[0]:.2f}", lr=f"{it.lr:.3g}"),
                         overwrite=a.overwrite)
    seconds = time.perf_counter() - start
    print(f"unit {a.unit} of {a.act_layer}: activation {out.activations[-1]:.2f} after {out.iterations} "
          f"iterations ({seconds:.1f} s, {out.device})")
    if out.stop is not None:
        print(f"stopped early after iteration {out.stop.iteration + 1} of {a.n_iters}: {out.stop.reason} "
              "(the released algorithm ends a run there)")
    print(f"saved {out.paths['jpg']}")
    return 0


def _run_download(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .download import download

    bars: dict[str, tqdm] = {}

    def progress(event: str, name: str, done: int, total: int | None) -> None:
        # A bar appears once bytes flow, so an offline failure prints only its one error line.
        bar = bars.get(name)
        if bar is None:
            if event not in ("start", "progress", "extract"):
                return
            bar = bars[name] = tqdm(total=total, desc=name, unit="B", unit_scale=True, file=sys.stderr, leave=False)
        bar.n = done
        bar.refresh()
        if event in ("done", "retry"):
            bars.pop(name).close()

    files = download(a.groups or ["all"], a.nets_dir or paths.nets_dir(), progress=progress)
    for bar in bars.values():
        bar.close()
    print(f"{len(files)} files present and verified under {a.nets_dir or paths.nets_dir()}")
    return 0


def _run_reproduce(a: argparse.Namespace) -> int:
    from .download import describe_missing, missing
    from .releases import command, models_for, select
    from .reproduce import run_release
    from .synthesize import check_value

    releases = select(a.examples)
    if a.n_iters is not None:
        check_value("n_iters", a.n_iters)
    if a.dry_run:
        for release in releases:
            models = models_for(release, a.gpu)
            print(f"# {release.name}")
            for run in release.runs(a.output_dir / release.name, a.n_iters):
                print(command(models, run))
        return 0
    for release in releases:
        models = models_for(release, a.gpu)
        run0 = release.runs(a.output_dir / release.name)[0]
        needed = [models.net_weights, models.generator_weights, run0.bound]
        needed += [models.encoder_weights, run0.init_file] if run0.init_file else []
        absent = missing(p for p in needed if p is not None)
        if absent:
            raise InputError(f"{release.name}: " + describe_missing(absent))

    failed: list[str] = []
    for release in releases:
        bar = Bar(a.quiet, None, release.name, "it")

        def progress(k: int, it, release=release, bar=bar) -> None:  # noqa: ANN001 - algorithm.Iteration
            desc = f"{release.name} unit {release.units[k]}"
            if bar.desc != desc:
                bar.restart(it.n_iters, desc)
            bar.step(act=f"{it.activations[0]:.2f}")

        try:
            with bar:
                result = run_release(release, a.output_dir, a.gpu, progress=progress, n_iters=a.n_iters,
                                     overwrite=a.overwrite, batch=a.batch)
        except InputError as exc:
            if len(releases) == 1:
                raise
            # one example that cannot be made does not stop the others; the exit code says so
            print(f"dgn-am: error: {release.name}: {exc}", file=sys.stderr)
            failed.append(release.name)
            continue
        print(f"\n{release.name}: {result.montage}")
        print(f"{'unit':>6}  {'label':<24} {'final activation':>16}")
        for unit, label, act in result.panels:
            print(f"{unit:>6}  {label[:24]:<24} {act:>16.2f}")
        for check in result.checks:
            print(f"  {check.verdict:<10} {check.path}: {check.detail}")
        if result.is_reproduction:
            print(f"{release.name} is a reproduction: every model is the released one.")
        elif result.shortened:
            print(f"{release.name} is NOT a reproduction: it ran {a.n_iters} iterations instead of {release.n_iters}.")
        else:
            print(f"{release.name} is NOT a reproduction of the released run: a model file differs from, or could "
                  "not be checked against, the released one.")
        if a.compare:
            reference = paths.released(f"examples/{release.name}.jpg")
            try:
                code = _compare_and_report(result.montage, reference, release.name, result.trajectory, None,
                                           None, None, None, a.n_iters if result.shortened else None)
            except InputError as exc:
                print(f"{release.name}: not compared: {exc}")
                code = 1
            if code:
                failed.append(release.name)
    if failed and len(releases) > 1:
        print(f"\n{len(failed)} of {len(releases)} examples failed or did not match: {', '.join(failed)}")
    return 1 if failed else 0


def _compare_and_report(result: Path, reference: Path, example: str | None, trajectory: list[float] | None,
                        out: Path | None, ssim_min: float | None, psnr_min: float | None,
                        max_rel: float | None, iterations: int | None = None) -> int:
    from . import compare

    out = compare.check_report_path(out or result.with_suffix(".compare.json"),
                                    [result, reference, result.with_suffix(".json")])
    report = compare.compare_release(result, reference, example, trajectory, ssim_min=ssim_min,
                                     psnr_min=psnr_min, max_rel=max_rel, iterations=iterations)
    compare.write_report(report, out)
    print(report.table())
    if report.passed:
        print(f"PASS: {result} matches {reference} (report {out})")
        return 0
    print(f"FAIL: {', '.join(report.failures())} (report {out})")
    return 1


def _run_compare(a: argparse.Namespace) -> int:
    from . import compare

    compare.check_thresholds(a.ssim_min, a.psnr_min, a.trajectory_max_rel)
    example, trajectory, iterations = compare.read_record(a.result)
    return _compare_and_report(a.result, a.reference, a.example or example, trajectory, a.json, a.ssim_min,
                               a.psnr_min, a.trajectory_max_rel, iterations)


def _run_sweep(a: argparse.Namespace) -> int:
    import signal

    from . import gallery, sweep

    shard = sweep.parse_shard(a.shard) if a.shard is not None else sweep.Shard()
    settings = sweep.settings({k: getattr(a, k) for k in sweep.KEYS}, a.config)
    if a.gallery_only:
        print(f"gallery: {gallery.write(Path(settings.get('output_dir')))}")
        return 0
    plan = sweep.plan(settings)
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
                from . import workers

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
        print(f"batching: --batch {saving.batch} would make these runs in about {_duration(saving.seconds(True))} "
              f"instead of {_duration(saving.seconds(False))} (timed on these nets: {saving.alone:.3f} vs "
              f"{saving.batched:.3f} s per image-iteration); the default --batch 1 keeps every run bit-identical "
              "to the released algorithm, a batch agrees with it to float32 rounding (README)")
    elif saving is not None:
        print(f"batching: --batch {saving.batch} would not save time here (timed on these nets: {saving.alone:.3f} "
              f"s per image-iteration alone, {saving.batched:.3f} batched); keep the default --batch 1")
    print(f"gallery: {summary.gallery}")
    return 1 if summary.failed else 0


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"


def _run_act_range(a: argparse.Namespace) -> int:
    from .actrange import compute

    result = compute(a.net_definition or paths.caffenet_definition(), a.net_weights or paths.caffenet_weights(),
                     a.layer, a.images, a.k, a.mean, a.output, decimals=a.decimals)
    print(f"{a.layer}: mean + {a.k:g} std of {len(result.bounds)} units over {result.n_images} images; "
          f"bounds {result.bounds.min():.2f}..{result.bounds.max():.2f} (mean {result.bounds.mean():.2f})")
    print(f"saved {result.output}")
    return 0


def _run_demo(a: argparse.Namespace) -> int:
    import dataclasses

    from .mini.demo import DemoSettings, MiniFiles, run_demo

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


def _axes(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def _run_layers(a: argparse.Namespace) -> int:
    from .netsummary import summarize

    summary = summarize(a.definition, a.weights)
    rows = [("blob", "shape", "units", "field size", "stride", "offset", "target", "code")]
    for r in summary.rows:
        f = r.field
        if f is None:
            size = stride = offset = "-"
        elif f.whole:
            size, stride, offset = "whole image", "-", "-"
        else:
            size, stride, offset = _axes(f.size), _axes(f.stride), _axes(f.offset)
        rows.append((r.name, "x".join(map(str, r.shape)), str(r.units), size, stride, offset,
                     "yes" if r.target else "-", "yes" if r.code else "-"))
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    for row in rows:
        cells = zip(row, widths, strict=True)
        print("  ".join(cell.ljust(w) if k == 0 else cell.rjust(w) for k, (cell, w) in enumerate(cells)))
    print(f"{len(summary.rows)} blobs of {summary.path}; input '{summary.input_blob}'")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # named by the sub-command, whose --help lists what it takes
        commands = next(x for x in parser._actions if isinstance(x, argparse._SubParsersAction))
        commands.choices[args.command].error(f"unrecognized arguments: {' '.join(extras)}")
    try:
        return args.func(args)
    except InputError as exc:  # DownloadError, RunFailed and RunConflict are ones too
        print(f"dgn-am: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dgn-am: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # the last resort for a file-system failure no check foresaw: still one line
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"dgn-am: error: {exc.strerror or exc.__class__.__name__}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
