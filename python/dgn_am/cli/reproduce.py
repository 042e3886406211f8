"""``dgn-am reproduce``: rerun the authors' released examples, build their montages, optionally compare."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..common import paths
from ..common.errors import InputError
from .compare import compare_and_report
from .progress import Bar


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--labels", type=Path, default=None, metavar="FILE",
                   help="names of the target's units, one per line, for the montages (default: the release's "
                   "downloaded class list)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(a: argparse.Namespace) -> int:
    from ..assets.labels import read_labels
    from ..assets.models import downloadable, require
    from ..runs.releases import command, models_for, select
    from ..runs.reproduce import run_release
    from ..runs.run import check_value

    releases = select(a.examples)
    labels = read_labels(a.labels) if a.labels else None
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
        require(downloadable(models, run0.init_file, run0.bound), prefix=f"{release.name}: ")

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
                                     overwrite=a.overwrite, batch=a.batch, labels=labels)
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
                code = compare_and_report(result.montage, reference, release.name, result.trajectory, None,
                                           None, None, None, a.n_iters if result.shortened else None)
            except InputError as exc:
                print(f"{release.name}: not compared: {exc}")
                code = 1
            if code:
                failed.append(release.name)
    if failed and len(releases) > 1:
        print(f"\n{len(failed)} of {len(releases)} examples failed or did not match: {', '.join(failed)}")
    return 1 if failed else 0
