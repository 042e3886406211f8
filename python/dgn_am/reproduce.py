"""``dgn-am reproduce``: a released run with its exact settings, as a montage in the released layout.

A result is called a reproduction only when every model file matches the released one: CaffeNet and
GoogLeNet by their published sha1, the generator and Places205 weights by the sha256 that
``dgn-am download`` recorded when it fetched them from the release (they have no published hash).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import download, manifest, montage, paths
from .algorithm import Iteration
from .images import to_display
from .releases import Release, labels_for, models_for
from .synthesize import Models, Outcome, Session


@dataclass
class ModelCheck:
    path: Path
    verdict: str  # "released", "differs", "unverified"
    detail: str


@dataclass
class Reproduction:
    release: Release
    montage: Path
    panels: list[tuple[int, str, float]]  # unit, label, final activation
    checks: list[ModelCheck]
    trajectory: list[float] = field(default_factory=list)  # example 3: the activation at every iteration
    shortened: bool = False  # run with fewer iterations than released

    @property
    def is_reproduction(self) -> bool:
        return not self.shortened and all(c.verdict == "released" for c in self.checks)


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def check_weights(path: Path) -> ModelCheck:
    """Is this weights file the released one? Says which hash it was compared with."""
    nets = paths.nets_dir()
    for entry in (download.CAFFENET, download.GOOGLENET):
        if Path(path).resolve() == (nets / entry.dest).resolve():
            got = _sha1(path)
            ok = got == entry.sha1
            verb = "matches" if ok else "differs from"
            return ModelCheck(path, "released" if ok else "differs",
                              f"sha1 {got[:12]}… {verb} the published {entry.sha1[:12]}…")
    try:
        recorded = json.loads((nets / download.MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        recorded = {}
    try:
        key = Path(path).resolve().relative_to(nets.resolve()).as_posix()
    except ValueError:
        key = None
    if key and key in recorded:
        got = manifest.sha256_file(path)
        ok = got == recorded[key]
        return ModelCheck(path, "released" if ok else "differs",
                          f"sha256 {got[:12]}… {'matches' if ok else 'differs from'} the one recorded at download")
    return ModelCheck(path, "unverified", "no released hash to compare with (not fetched by 'dgn-am download')")


def check_models(models: Models, release: Release) -> list[ModelCheck]:
    files = [models.net_weights, models.generator_weights]
    if release.init_file:
        files.append(models.encoder_weights)
    return [check_weights(p) for p in dict.fromkeys(files)]


def run_release(
    release: Release,
    output_dir: Path,
    gpu: int | None = None,
    models: Models | None = None,
    progress: Callable[[int, Iteration], None] | None = None,
    n_iters: int | None = None,
) -> Reproduction:
    """Run every panel of ``release`` in one session and write the labelled montage beside them.

    ``progress(panel_index, iteration)`` is called after each iteration of each panel.
    """
    models = models or models_for(release, gpu)
    checks = check_models(models, release)
    session = Session(models)
    runs = release.runs(output_dir / release.name, n_iters)
    for run in runs:
        session.check(run)  # every panel's input is checked before the first one runs
    labels = labels_for(release)
    frames: list[np.ndarray] = []
    outcomes: list[Outcome] = []
    for k, run in enumerate(runs):
        def on_iteration(it: Iteration, k: int = k) -> None:
            if release.every_iteration:
                frames.append(it.stepped[0].copy())  # act_max.py's debug frame
            if progress is not None:
                progress(k, it)

        outcomes.append(session.run(run, on_iteration))

    if release.every_iteration:
        acts = [float(a) for a in outcomes[0].activations]
        tiles = [to_display(f) for f in frames]
        tile_labels = [f"{a:.2f}" for a in acts]
        # act_max.py also wrote the saved result as one more frame; the released montage shows it unlabelled.
        tiles.append(to_display(np.load(outcomes[0].paths["npz"])["image"][0]))
        tile_labels.append("")
    else:
        acts = []
        tiles, tile_labels = [], []
        for run, outcome in zip(runs, outcomes, strict=True):
            image = np.load(outcome.paths["npz"])["image"][0]
            if outcome.receptive_field is not None:
                top, left, h, w = outcome.receptive_field
                image = image[:, top : top + h, left : left + w]
            tiles.append(to_display(image))
            tile_labels.append(labels.get(run.unit, f"unit {run.unit}"))
    geometry = montage.RELEASED_GEOMETRY[release.name]
    path = output_dir / f"{release.name}.jpg"
    montage.save(montage.render(tiles, tile_labels, geometry), path)
    panels = [(run.unit, labels.get(run.unit, f"unit {run.unit}"), float(o.activations[-1]))
              for run, o in zip(runs, outcomes, strict=True)]
    result = Reproduction(release, path, panels, checks, acts, shortened=bool(n_iters and n_iters != release.n_iters))
    manifest.write(output_dir / f"{release.name}.json", {
        "release": release.name, "montage": path.name, "reproduction": result.is_reproduction,
        "n_iters": runs[0].n_iters, "shortened": result.shortened,
        "model_checks": [{"path": str(c.path), "verdict": c.verdict, "detail": c.detail} for c in checks],
        "panels": [{"unit": u, "label": lab, "final_activation": a} for u, lab, a in panels],
        "trajectory": acts, "device": session.device,
        "runs": [o.paths["json"].name for o in outcomes],
    })
    return result
