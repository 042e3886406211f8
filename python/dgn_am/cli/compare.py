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
    p.add_argument("--runs", action="store_true",
                   help="RESULT and REFERENCE are result folders: pair their runs by their manifests' settings and "
                   "compare each pair's image and final activation (e.g. CPU against GPU, before against after)")
    p.add_argument("--json", type=Path, default=None,
                   help="report file (default RESULT.compare.json; with --runs RESULT/runs.compare.json)")
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
    if a.runs:
        return _compare_runs(a)
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


def _compare_runs(a: argparse.Namespace) -> int:
    import json

    from ..common.files import write_atomic
    from ..results import compare, compare_runs

    if a.grid is not None or a.tile is not None or a.example is not None:
        raise InputError("--runs pairs whole runs: leave out --grid, --tile and --example")
    report = compare_runs.compare_runs(a.result, a.reference, a.ssim_min, a.psnr_min, a.trajectory_max_rel)
    out = compare.check_report_path(a.json or a.result / "runs.compare.json", [])
    write_atomic(out, (json.dumps(report.to_dict(), indent=1) + "\n").encode())
    print(report.table())
    print(f"{'PASS' if report.passed else 'FAIL'} (report {out})")
    return 0 if report.passed else 1
