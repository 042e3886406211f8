"""Run against run: two result folders matched by their manifests' settings, image by image.

For a change of device, build or code (CPU against GPU, before against after): every run manifest in
folder A is paired with the one in folder B that records the same parameters (the output folder and
``debug`` aside), whatever the file names. Each pair gets the SSIM and PSNR of its saved images (as
``compare`` scores tiles) and the relative difference of the unit's final activations; runs with no
partner are listed. The loop is chaotic, so a different BLAS or device is expected to move late
iterations: the report says how far, and the thresholds are those of ``compare``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..common.errors import InputError
from . import manifest
from .compare import PSNR_MIN, SSIM_MIN, TRAJECTORY_MAX_REL, score_panel
from .images import read_image


@dataclass
class RunPair:
    name: str  # folder A's manifest name
    ssim: float
    psnr: float
    activation_a: float
    activation_b: float

    @property
    def rel_diff(self) -> float:
        return abs(self.activation_a - self.activation_b) / max(abs(self.activation_b), 1e-12)


@dataclass
class RunsReport:
    a: Path
    b: Path
    ssim_min: float
    psnr_min: float
    max_rel: float
    pairs: list[RunPair] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)

    def passed_pair(self, p: RunPair) -> bool:
        return p.ssim >= self.ssim_min and p.psnr >= self.psnr_min and p.rel_diff <= self.max_rel

    def failures(self) -> list[str]:
        return [p.name for p in self.pairs if not self.passed_pair(p)]

    @property
    def passed(self) -> bool:
        return bool(self.pairs) and not self.failures() and not self.only_a and not self.only_b

    def table(self) -> str:
        lines = [f"runs of {self.a} against the runs of {self.b} with the same settings",
                 f"a pair passes with SSIM >= {self.ssim_min:g}, PSNR >= {self.psnr_min:g} dB and final activations "
                 f"within {self.max_rel:.1%}",
                 f"{'run':<44} {'ssim':>7} {'psnr':>7} {'act A':>9} {'act B':>9} {'rel':>7}  verdict"]
        for p in self.pairs:
            lines.append(f"{p.name[:44]:<44} {p.ssim:>7.4f} {p.psnr:>7.2f} {p.activation_a:>9.2f} "
                         f"{p.activation_b:>9.2f} {p.rel_diff:>7.2%}  {'pass' if self.passed_pair(p) else 'FAIL'}")
        lines += [f"only in {self.a}: {name}" for name in self.only_a]
        lines += [f"only in {self.b}: {name}" for name in self.only_b]
        lines.append(f"overall: {'PASS' if self.passed else 'FAIL'} ({len(self.pairs)} pairs)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": str(self.a), "b": str(self.b),
            "thresholds": {"ssim_min": self.ssim_min, "psnr_min": self.psnr_min, "activation_max_rel": self.max_rel},
            "pairs": [{"run": p.name, "ssim": p.ssim, "psnr": p.psnr if math.isfinite(p.psnr) else None,
                       "activation_a": p.activation_a, "activation_b": p.activation_b, "rel_diff": p.rel_diff,
                       "verdict": "pass" if self.passed_pair(p) else "fail"} for p in self.pairs],
            "only_a": self.only_a, "only_b": self.only_b, "failures": self.failures(),
            "verdict": "pass" if self.passed else "fail",
        }


def result_runs(folder: Path) -> list[tuple[Path, dict]]:
    """The run manifests of ``folder`` (not its subfolders), by name: reports and damaged files left out."""
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of results")
    out = []
    for path in sorted(folder.glob("*.json")):
        record = manifest.read(path)
        if not isinstance(record, dict) or record.get("tool") != "dgn-am" or not isinstance(
                record.get("parameters"), dict) or not isinstance(record.get("results"), dict):
            continue  # a report, a montage record, a damaged file
        out.append((path, record))
    return out


def _runs(folder: Path) -> dict[str, tuple[Path, dict]]:
    """The run manifests of ``folder``, keyed by their settings."""
    out: dict[str, tuple[Path, dict]] = {}
    for path, record in result_runs(folder):
        settings = {k: v for k, v in record["parameters"].items() if k not in manifest.NOT_RESULT}
        out[json.dumps(settings, sort_keys=True, default=str)] = (path, record)
    return out


def result_image(path: Path, record: dict) -> Any:
    """The image a run manifest says it saved (H x W x 3 uint8 RGB)."""
    name = (record["results"].get("outputs") or {}).get("png")
    if not isinstance(name, str) or "/" in name:
        raise InputError(f"{path} names no saved image")
    return read_image(path.parent / name, "result image")


def compare_runs(a: Path, b: Path, ssim_min: float = SSIM_MIN, psnr_min: float = PSNR_MIN,
                 max_rel: float = TRAJECTORY_MAX_REL) -> RunsReport:
    """Pair the runs of folders ``a`` and ``b`` by their settings and score each pair."""
    runs_a, runs_b = _runs(Path(a)), _runs(Path(b))
    if not runs_a and not runs_b:
        raise InputError(f"neither {a} nor {b} holds a dgn-am run manifest")
    report = RunsReport(Path(a), Path(b), ssim_min, psnr_min, max_rel)
    for key, (path, record) in runs_a.items():
        if key not in runs_b:
            report.only_a.append(path.name)
            continue
        other_path, other = runs_b[key]
        image_a, image_b = result_image(path, record), result_image(other_path, other)
        if image_a.shape != image_b.shape:
            raise InputError(f"{path.name}: the two runs' images differ in size ({image_a.shape} vs {image_b.shape})")
        ssim, psnr = score_panel(image_a, image_b)
        report.pairs.append(RunPair(path.name, ssim, psnr, float(record["results"]["final_activation"]),
                                    float(other["results"]["final_activation"])))
    report.only_b = [path.name for key, (path, _) in runs_b.items() if key not in runs_a]
    return report
