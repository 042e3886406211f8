"""Is a reproduced montage the released one? Panel by panel, plus example 3's activation trajectory.

Both images are split by the same released geometry (``montage.RELEASED_GEOMETRY``) into the tile
box of each panel. Only tiles are scored: the labels are drawn here with another font than the
released ImageMagick ones, so their pixels would differ even for a perfect reproduction; example 3's
printed numbers are checked as data instead (``RELEASED_TRAJECTORY``).

Each tile pair gets SSIM (scikit-image, over the RGB channels, data range 255) and PSNR (dB). A panel
passes when both reach their minimum. The defaults were set by measuring the released tiles
themselves (every panel of all five examples):

- re-encoding a released montage as JPEG gives SSIM >= 0.999 at quality 92, >= 0.918 at quality 75 and
  >= 0.84 at quality 50; PSNR >= 50, 31 and 27.8 dB. The released tiles went through two to four JPEG
  encodings (act_max.py's frame, ImageMagick's label, montage, trim), a reproduction through one, so a
  faithful result differs from the released tile by about that much. Example 3's last two frames are
  the same image through different JPEG paths and score 0.962 / 38 dB.
- a different picture scores SSIM <= 0.41 and PSNR <= 14.3 dB (any other panel of the same montage, or
  the same class from another net); a mirrored tile <= 0.69 / 19.4 dB; the tile moved by one pixel
  0.25-0.68 / 19-25 dB; example 3's iteration 20 against 29: 0.73 / 19.1 dB.

So ``SSIM_MIN = 0.80`` and ``PSNR_MIN = 25`` dB: JPEG noise down to quality 50 passes, a different, mirrored
or shifted picture fails. Iterations a few steps apart late in example 3 (25 against 29: 0.87 / 25.9 dB)
are closer than JPEG noise and pass; the trajectory check catches a run that is off in its activations.

Trajectory (example 3): the activation printed under each frame has two decimals, so rounding alone
differs by up to 0.005 / 19.56 = 0.03 %. ``TRAJECTORY_MAX_REL = 0.02``: float reordering on another BLAS
or device stays well inside 2 %, while a run with other settings, weights or start image is off by more
(a 5 % error fails). An iteration fails when ``|result - released| / |released|`` exceeds it, or when
either side lacks that iteration.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..common.errors import InputError
from ..common.files import write_atomic
from .images import read_image
from .montage import RELEASED_GEOMETRY, Box, Geometry

SSIM_MIN = 0.80
PSNR_MIN = 25.0
TRAJECTORY_MAX_REL = 0.02

#: The fc8 activation of unit 945 (bell pepper) printed under frames 0..29 of the released
#: examples/example3.jpg (Evolving-AI-Lab/synthesizing at the pinned commit), read off that image.
RELEASED_TRAJECTORY: dict[str, tuple[float, ...]] = {
    "example3": (
        19.56, 24.39, 23.22, 23.99, 30.49, 28.91, 33.08, 35.00, 36.04, 37.12,
        37.61, 38.32, 39.87, 41.85, 42.54, 44.34, 43.83, 49.08, 47.24, 47.57,
        49.31, 52.19, 52.59, 54.67, 53.72, 57.24, 57.92, 58.07, 59.07, 59.95,
    ),
}


@dataclass
class PanelScore:
    name: str  # "panel 3": numbered from 1, left to right, then top to bottom
    box: Box
    ssim: float
    psnr: float  # inf for identical tiles
    passed: bool


@dataclass
class TrajectoryPoint:
    name: str  # "iteration 12": numbered from 0, as the released frames are
    released: float | None
    result: float | None
    rel_diff: float | None
    passed: bool


@dataclass
class Report:
    result: Path
    reference: Path
    example: str
    ssim_min: float
    psnr_min: float
    max_rel: float
    panels: list[PanelScore]
    trajectory: list[TrajectoryPoint] | None = None  # None: not checked
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures()

    def failures(self) -> list[str]:
        """Names of every failing panel, then every failing iteration."""
        return [p.name for p in self.panels if not p.passed] + [t.name for t in self.trajectory or [] if not t.passed]

    def table(self) -> str:
        lines = [f"{self.example}: {self.result} against {self.reference}",
                 f"tiles only (labels excluded); a panel passes with SSIM >= {self.ssim_min:g} and "
                 f"PSNR >= {self.psnr_min:g} dB",
                 f"{'panel':<14} {'ssim':>7} {'psnr':>7}  verdict"]
        for p in self.panels:
            lines.append(f"{p.name:<14} {p.ssim:>7.4f} {p.psnr:>7.2f}  {'pass' if p.passed else 'FAIL'}")
        if self.trajectory is not None:
            lines.append(f"activation trajectory; an iteration passes within {self.max_rel:.1%} of the released value")
            lines.append(f"{'iteration':<13} {'released':>9} {'result':>9} {'rel diff':>9}  verdict")
            for t in self.trajectory:
                lines.append(f"{t.name:<13} {_num(t.released, '.2f'):>9} {_num(t.result, '.2f'):>9} "
                             f"{_num(t.rel_diff, '.2%'):>9}  {'pass' if t.passed else 'FAIL'}")
        lines += self.notes
        lines.append(f"overall: {'PASS' if self.passed else 'FAIL'}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; a PSNR of identical tiles (infinite) is written as null."""
        return {
            "example": self.example, "result": str(self.result), "reference": str(self.reference),
            "thresholds": {"ssim_min": self.ssim_min, "psnr_min": self.psnr_min, "trajectory_max_rel": self.max_rel},
            "scored": "tile boxes only; labels excluded",
            "panels": [{"name": p.name, "box": {"top": p.box.top, "left": p.box.left, "height": p.box.height,
                                                "width": p.box.width},
                        "ssim": p.ssim, "psnr": p.psnr if math.isfinite(p.psnr) else None,
                        "verdict": "pass" if p.passed else "fail"} for p in self.panels],
            "trajectory": None if self.trajectory is None else [
                {"name": t.name, "released": t.released, "result": t.result, "rel_diff": t.rel_diff,
                 "verdict": "pass" if t.passed else "fail"} for t in self.trajectory],
            "notes": self.notes,
            "failures": self.failures(),
            "verdict": "pass" if self.passed else "fail",
        }


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _size(image: np.ndarray) -> str:
    return f"{image.shape[1]}x{image.shape[0]}"


def _geometry(example: str | None, reference: np.ndarray, path: Path) -> Geometry:
    if example is not None:
        if example not in RELEASED_GEOMETRY:
            raise InputError(f"unknown example '{example}'; choose from {', '.join(RELEASED_GEOMETRY)}")
        return RELEASED_GEOMETRY[example]
    size = (reference.shape[1], reference.shape[0])
    for geometry in RELEASED_GEOMETRY.values():
        if geometry.size == size:
            return geometry
    raise InputError(f"reference {path} is {_size(reference)}, the size of no released example; pass --example")


def grid_layout(spec: str, tile: int, reference: np.ndarray, path: Path) -> Geometry:
    """Any montage of ROWSxCOLS square ``tile`` px tiles, each framed by 1 px with a label strip beneath (of
    any height, 0 included): how dgn-am draws its figures, demo and reproductions, and the released montages."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", spec)
    if m is None or int(m[1]) < 1 or int(m[2]) < 1:
        raise InputError(f"--grid must be ROWSxCOLS with both at least 1, e.g. 3x3; got {spec!r}")
    if tile < 1:
        raise InputError(f"--tile must be a size in pixels >= 1, got {tile}")
    rows, columns = int(m[1]), int(m[2])
    width, height = reference.shape[1], reference.shape[0]
    if width != columns * (tile + 2):
        raise InputError(f"reference {path} is {width} px wide, but {columns} columns of {tile} px tiles in a 1 px "
                         f"border make {columns * (tile + 2)}")
    label_h = height // rows - tile - 2
    if height % rows or label_h < 0:
        raise InputError(f"reference {path} is {height} px high, which {rows} rows of {tile} px tiles (each with "
                         "a label strip of one height) cannot make")
    return Geometry("grid", tile, tile, rows * columns, (width, height), columns=columns, label_h=label_h)


def score_panel(result: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """SSIM and PSNR (dB) of two equally sized uint8 RGB tiles."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    ssim = float(structural_similarity(result, reference, channel_axis=-1, data_range=255))
    if np.array_equal(result, reference):
        return ssim, math.inf
    return ssim, float(peak_signal_noise_ratio(reference, result, data_range=255))


def compare_trajectory(trajectory: list[float], released: tuple[float, ...], max_rel: float) -> list[TrajectoryPoint]:
    """One point per iteration of either run; an iteration only one side has fails."""
    points = []
    for i in range(max(len(trajectory), len(released))):
        ref = released[i] if i < len(released) else None
        got = float(trajectory[i]) if i < len(trajectory) else None
        rel = None if ref is None or got is None else abs(got - ref) / abs(ref)
        points.append(TrajectoryPoint(f"iteration {i}", ref, got, rel, rel is not None and rel <= max_rel))
    return points


def check_thresholds(ssim_min: float, psnr_min: float, max_rel: float) -> None:
    """The pass thresholds are numbers a comparison can meet (a NaN threshold would fail or pass everything)."""
    if not (math.isfinite(ssim_min) and -1 <= ssim_min <= 1):
        raise InputError(f"--ssim_min must be a number in [-1, 1] (SSIM's range), got {ssim_min}")
    if not (math.isfinite(psnr_min) and psnr_min >= 0):
        raise InputError(f"--psnr_min must be a finite number of dB >= 0, got {psnr_min}")
    if not (math.isfinite(max_rel) and max_rel >= 0):
        raise InputError(f"--trajectory_max_rel must be a finite number >= 0, got {max_rel}")


def compare_release(
    result: Path,
    reference: Path,
    example: str | None,
    trajectory: list[float] | None,
    ssim_min: float | None = None,
    psnr_min: float | None = None,
    max_rel: float | None = None,
    iterations: int | None = None,
    grid: tuple[str, int] | None = None,
) -> Report:
    """Score every panel of ``result`` against ``reference`` in the released layout of ``example``.

    ``example`` None: the layout whose released size the reference has. ``trajectory`` (example 3's
    activation per iteration) is checked against the released values when the example has them.
    ``iterations``: how many iterations the result ran, when that is not the released number (a
    shortened check). For example 3, whose montage has a frame per iteration, only the frames and
    trajectory points both runs have are compared, and the report says what was left out; the other
    examples keep their layout, and the report notes that a shortened run is not expected to match.
    Thresholds left None take the module's defaults. ``grid`` (ROWSxCOLS, tile px) splits any montage by
    ``grid_layout`` instead of a released layout; its panels are named by row and column.
    """
    ssim_min = SSIM_MIN if ssim_min is None else ssim_min
    psnr_min = PSNR_MIN if psnr_min is None else psnr_min
    max_rel = TRAJECTORY_MAX_REL if max_rel is None else max_rel
    check_thresholds(ssim_min, psnr_min, max_rel)
    result, reference = Path(result), Path(reference)
    got = read_image(result, "result image")
    ref = read_image(reference, "reference image")
    geometry = grid_layout(grid[0], grid[1], ref, reference) if grid else _geometry(example, ref, reference)
    width, height = geometry.size
    if (ref.shape[1], ref.shape[0]) != geometry.size:
        raise InputError(f"reference {reference} is {_size(ref)} but the released {geometry.name} layout is "
                         f"{width}x{height}")
    _, boxes, _ = geometry.released_layout()
    result_boxes, notes, compared = boxes, [], len(boxes)
    per_frame = geometry.labelled is not None and geometry.labelled < geometry.count
    if iterations is not None and per_frame and iterations != geometry.labelled:
        # example 3: frames 0..n-1, then the saved result, laid out as the released montage would be
        compared = min(iterations, geometry.labelled)
        size, result_boxes, _ = geometry.layout([True] * iterations + [False])
        if (got.shape[1], got.shape[0]) != size:
            raise InputError(f"result {result} is {_size(got)}, not the {size[0]}x{size[1]} of a {geometry.name} "
                             f"montage of {iterations} iterations")
        left_out = f"frames {compared}-{geometry.labelled - 1} and " if compared < geometry.labelled else ""
        notes.append(f"not compared: {left_out}the final image (the result ran {iterations} iterations, the "
                     f"released run {geometry.labelled}); frames 0-{compared - 1} are")
    elif got.shape != ref.shape:
        raise InputError(f"result {result} is {_size(got)} but reference {reference} is {_size(ref)}; "
                         "they must have the same layout")
    elif iterations is not None:
        notes.append(f"the result ran {iterations} iterations, not the released number: its panels are not "
                     "expected to match")
    panels = []
    for k in range(compared):
        ssim, psnr = score_panel(result_boxes[k].crop(got), boxes[k].crop(ref))
        name = f"row {k // geometry.columns + 1} col {k % geometry.columns + 1}" if grid else f"panel {k + 1}"
        panels.append(PanelScore(name, boxes[k], ssim, psnr, ssim >= ssim_min and psnr >= psnr_min))
    report = Report(result, reference, geometry.name, ssim_min, psnr_min, max_rel, panels, notes=notes)
    released = RELEASED_TRAJECTORY.get(geometry.name)
    if released is not None:
        if trajectory:
            if iterations is not None and per_frame and len(trajectory) < len(released):
                report.notes.append(f"activation trajectory: iterations {len(trajectory)}-{len(released) - 1} "
                                    "not compared (the result did not run them)")
                released = released[: len(trajectory)]
            elif iterations is not None and per_frame:
                trajectory = list(trajectory)[: len(released)]
            report.trajectory = compare_trajectory(list(trajectory), released, max_rel)
        else:
            report.notes.append("activation trajectory: not checked (no trajectory given with the result)")
    return report


def read_record(result: Path) -> tuple[str | None, list[float] | None, int | None]:
    """The montage record beside ``result`` (``RESULT.json``): its example, trajectory and iterations.

    No record, or a run manifest (another kind of record), gives nothing. A record that is not
    valid JSON, or whose fields have the wrong types, is an InputError: comparing without the
    trajectory it was meant to carry would pass a run that should fail.
    """
    from ..common.errors import read_input

    path = Path(result).with_suffix(".json")
    if not path.exists():
        return None, None, None
    try:
        data = json.loads(read_input(path, "montage record"))
    except ValueError:
        raise InputError(f"montage record {path} beside the result is not valid JSON; fix or remove it, or "
                         "move the result elsewhere") from None
    if not isinstance(data, dict):
        raise InputError(f"montage record {path} is not a JSON object")
    if data.get("tool") == "dgn-am" and "release" not in data:
        return None, None, None  # a run manifest, not a montage record
    example, trajectory, n = data.get("release"), data.get("trajectory"), data.get("n_iters")
    if example is not None and (not isinstance(example, str) or example not in RELEASED_GEOMETRY):
        raise InputError(f"montage record {path}: 'release' is {example!r}, not one of {', '.join(RELEASED_GEOMETRY)}")
    if trajectory is not None and (not isinstance(trajectory, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in trajectory)):
        raise InputError(f"montage record {path}: 'trajectory' must be a list of finite numbers")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InputError(f"montage record {path}: 'n_iters' must be a whole number >= 1, got {n!r}")
    shortened = data.get("shortened") is True
    return example, trajectory or None, n if shortened else None


def check_report_path(path: Path, inputs: list[Path]) -> Path:
    """Where a report may go: never over one of the compared files (or their record), never over a symlink."""
    from ..common.files import check_destination

    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"cannot write the report {path} (its folder does not exist)")
    check_destination(path, inputs)
    return path


def write_report(report: Report, path: Path) -> Path:
    """The report as JSON, written atomically; never over a compared file, its record or a symlink."""
    path = check_report_path(path, [report.result, report.reference, Path(report.result).with_suffix(".json")])
    write_atomic(path, (json.dumps(report.to_dict(), indent=1) + "\n").encode())
    return path
