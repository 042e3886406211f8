"""The ``dgn-am`` command: parse, validate, call the library, report. Nothing else lives here."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from . import paths
from .errors import InputError


def _synthesize_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synthesize", help="run DGN-AM for one unit (act_max.py's options)",
                       description="Synthesize the preferred input of one unit with DGN-AM.")
    p.add_argument("--unit", type=int, required=True, help="unit index (fc: flat index; conv: channel)")
    p.add_argument("--n_iters", type=int, default=10, help="iterations (default 10)")
    p.add_argument("--L2", type=float, default=1.0, help="code decay factor, applied when 0 < L2 < 1")
    p.add_argument("--start_lr", type=float, default=2.0, help="learning rate at iteration 0")
    p.add_argument("--end_lr", type=float, default=-1.0, help="learning rate approached at the end (<0: start_lr)")
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
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_synthesize)


def _download_parser(sub: argparse._SubParsersAction) -> None:
    from .download import GROUPS

    p = sub.add_parser("download", help="fetch and verify the pretrained models and released data")
    p.add_argument("groups", nargs="*", default=None, metavar="GROUP",
                   help=f"what to fetch: {', '.join(sorted(GROUPS))} (default: all)")
    p.add_argument("--nets_dir", type=Path, default=None, help="where models go (default nets/ or $DGN_AM_NETS)")
    p.set_defaults(func=_run_download)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dgn-am", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _synthesize_parser(sub)
    _download_parser(sub)
    return parser


def _check_numbers(a: argparse.Namespace) -> None:
    if a.unit < 0:
        raise InputError(f"--unit must be >= 0, got {a.unit}")
    if a.n_iters < 1:
        raise InputError(f"--n_iters must be >= 1, got {a.n_iters}")
    for name in ("xy", "x", "y", "unit2"):
        value = getattr(a, name)
        if value is not None and value < 0:
            raise InputError(f"--{name} must be >= 0, got {value}")
    if a.unit2 is None and a.gamma != 0:
        raise InputError("--gamma needs --unit2")
    if not 0 <= a.seed < 2**32:
        raise InputError(f"--seed must be in [0, 2**32), got {a.seed}")
    for name in ("L2", "start_lr", "end_lr", "gamma"):
        if not math.isfinite(getattr(a, name)):
            raise InputError(f"--{name} must be a finite number")
    if a.L2 < 0:
        raise InputError(f"--L2 must be >= 0, got {a.L2}")
    if a.gamma < 0:
        raise InputError(f"--gamma must be >= 0, got {a.gamma}")


def _run_synthesize(a: argparse.Namespace) -> int:
    from .download import describe_missing
    from .synthesize import Models, Run, synthesize

    _check_numbers(a)
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
        end_lr=a.start_lr if a.end_lr < 0 else a.end_lr, seed=a.seed,
        x=a.xy if a.x is None else a.x, y=a.xy if a.y is None else a.y,
        opt_layer=a.opt_layer, act_layer=a.act_layer, clip=bool(a.clip), debug=bool(a.debug),
        init_file=Path(a.init_file) if a.init_file else None, bound=Path(a.bound) if a.bound else None,
        output_dir=Path(a.output_dir), unit2=a.unit2, gamma=a.gamma,
    )
    needed = [models.net_weights, models.generator_weights] + ([models.encoder_weights] if run.init_file else [])
    if run.bound and paths.nets_dir() in run.bound.resolve().parents:
        needed.append(run.bound)  # a released act_range file that `dgn-am download` would fetch
    missing = [p for p in dict.fromkeys(needed) if not p.exists()]
    if missing:
        raise InputError(describe_missing(missing))

    bars: list = []  # made at the first iteration, so a failed check prints only its one line

    def progress(it) -> None:  # noqa: ANN001 - algorithm.Iteration
        if a.quiet:
            return
        if not bars:
            from tqdm import tqdm

            bars.append(tqdm(total=a.n_iters, desc=f"{a.act_layer} unit {a.unit}", unit="it", file=sys.stderr))
        bars[0].set_postfix(act=f"{it.activations[0]:.2f}", lr=f"{it.lr:.3g}", refresh=False)
        bars[0].update(1)

    start = time.perf_counter()
    try:
        out = synthesize(models, run, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    seconds = time.perf_counter() - start
    print(f"unit {a.unit} of {a.act_layer}: activation {out.activations[-1]:.2f} after {out.iterations} "
          f"iterations ({seconds:.1f} s, {out.device})")
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:  # DownloadError is one too
        print(f"dgn-am: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dgn-am: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
