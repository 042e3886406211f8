"""``dgn-am compare``: a result montage against a reference, panel by panel, with a report file."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..common.errors import InputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..results.compare import PSNR_MIN, SSIM_MIN, TRAJECTORY_MAX_REL

    p = sub.add_parser("compare", help="compare a result montage with a reference, panel by panel")
    p.add_argument("result", type=Path)
    p.add_argument("reference", type=Path)
    p.add_argument("--example", default=None, help="released layout to split by (default: from the result's "
                   "manifest, else from the image size)")
    p.add_argument("--grid", default=None, metavar="ROWSxCOLS",
                   help="split any montage into ROWSxCOLS tiles instead of a released layout (with --tile)")
    p.add_argument("--tile", type=int, default=None, metavar="N", help="with --grid: the tiles' size in pixels")
    p.add_argument("--json", type=Path, default=None, help="report file (default RESULT.compare.json)")
    p.add_argument("--ssim_min", type=float, default=SSIM_MIN)
    p.add_argument("--psnr_min", type=float, default=PSNR_MIN)
    p.add_argument("--trajectory_max_rel", type=float, default=TRAJECTORY_MAX_REL)
    p.set_defaults(func=run)


def compare_and_report(result: Path, reference: Path, example: str | None, trajectory: list[float] | None,
                        out: Path | None, ssim_min: float | None, psnr_min: float | None,
                        max_rel: float | None, iterations: int | None = None,
                        grid: tuple[str, int] | None = None) -> int:
    from ..results import compare

    out = compare.check_report_path(out or result.with_suffix(".compare.json"),
                                    [result, reference, result.with_suffix(".json")])
    report = compare.compare_release(result, reference, example, trajectory, ssim_min=ssim_min,
                                     psnr_min=psnr_min, max_rel=max_rel, iterations=iterations, grid=grid)
    compare.write_report(report, out)
    print(report.table())
    if report.passed:
        print(f"PASS: {result} matches {reference} (report {out})")
        return 0
    print(f"FAIL: {', '.join(report.failures())} (report {out})")
    return 1


def run(a: argparse.Namespace) -> int:
    from ..results import compare

    compare.check_thresholds(a.ssim_min, a.psnr_min, a.trajectory_max_rel)
    if (a.grid is None) != (a.tile is None):
        raise InputError("--grid and --tile go together (e.g. --grid 3x3 --tile 227)")
    if a.grid is not None and a.example is not None:
        raise InputError("--grid splits by its own layout: leave out --example")
    if a.grid is not None:
        return compare_and_report(a.result, a.reference, None, None, a.json, a.ssim_min, a.psnr_min,
                                  a.trajectory_max_rel, None, (a.grid, a.tile))
    example, trajectory, iterations = compare.read_record(a.result)
    return compare_and_report(a.result, a.reference, a.example or example, trajectory, a.json, a.ssim_min,
                               a.psnr_min, a.trajectory_max_rel, iterations)
