"""``dgn-am reproduce``: a released run with its exact settings, as a montage in the released layout.

A result is called a reproduction only when every model file matches the released one: CaffeNet and
GoogLeNet by their published sha1, the generator and Places205 weights by the sha256 that
``dgn-am download`` recorded when it fetched them from the release (they have no published hash).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..assets import catalogue
from ..assets.archives import MANIFEST_NAME
from ..assets.labels import label_of
from ..assets.models import Models
from ..common import paths
from ..common.files import check_destination, ensure_writable_dir, hash_file, write_atomic
from ..core.algorithm import Iteration
from ..core.pixels import to_display
from ..results import manifest, montage
from ..results.outputs import npz_bytes
from .releases import Release, labels_for, models_for
from .run import Run, batches, check_value, validate
from .session import Outcome, Session


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


def check_weights(path: Path) -> ModelCheck:
    """Is this weights file the released one? Says which hash it was compared with."""
    nets = paths.nets_dir()
    for entry in (catalogue.CAFFENET, catalogue.GOOGLENET):
        if Path(path).resolve() == (nets / entry.dest).resolve():
            got = hash_file(path, "sha1")
            ok = got == entry.sha1
            verb = "matches" if ok else "differs from"
            return ModelCheck(path, "released" if ok else "differs",
                              f"sha1 {got[:12]}… {verb} the published {entry.sha1[:12]}…")
    try:
        recorded = json.loads((nets / MANIFEST_NAME).read_text())
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


def _frames_path(run: Run) -> Path:
    """Example 3's montage shows every iteration; its frames (float, as act_max.py saved them) are kept here."""
    return run.output_dir / f"{run.stem()}_frames.npz"


def _finished(run: Run, records: dict, every_iteration: bool) -> Outcome | None:
    """A panel already made with these settings and models (its outputs all there), read back; else None."""
    if not manifest.finished(run.manifest_path(), asdict(run), records):
        return None
    if every_iteration:
        try:
            with np.load(_frames_path(run)) as z:
                if len(z["frames"]) != run.n_iters:
                    return None
        except (OSError, ValueError, KeyError):
            return None
    record = manifest.read(run.manifest_path())
    results = record["results"]
    paths = {k: run.output_dir / v for k, v in results["outputs"].items()}
    paths["json"] = run.manifest_path()
    with np.load(paths["npz"]) as z:
        activations = z["activations"].copy()
    rf = results.get("receptive_field")
    return Outcome(paths, activations, int(results.get("iterations", len(activations))), str(record.get("device")),
                   tuple(rf) if isinstance(rf, list) and len(rf) == 4 else None)


def run_release(
    release: Release,
    output_dir: Path,
    gpu: int | None = None,
    models: Models | None = None,
    progress: Callable[[int, Iteration], None] | None = None,
    n_iters: int | None = None,
    overwrite: bool = False,
    batch: int = 1,
    labels: dict[int, str] | None = None,
) -> Reproduction:
    """Run every panel of ``release`` in one session and write the labelled montage beside them.

    Resumable like a sweep: a panel already made with the same settings and model files is read back
    instead of run again (and when every panel is, the nets are not even loaded).
    ``progress(panel_index, iteration)`` is called after each iteration of each panel (of a batch's first
    panel when ``batch`` > 1 panels share each pass; the default 1 keeps the released arithmetic).
    ``labels`` name the panels (``--labels``) instead of the release's downloaded class list.
    """
    models = models or models_for(release, gpu)
    runs = release.runs(output_dir / release.name, n_iters)
    for run in runs:
        validate(run)
    check_value("batch", batch)
    labels = labels if labels is not None else labels_for(release)  # a damaged list fails before anything runs
    ensure_writable_dir(output_dir)
    path = output_dir / f"{release.name}.jpg"
    for target in [path, path.with_suffix(".json")] + [_frames_path(r) for r in runs if release.every_iteration]:
        check_destination(target)  # the montage and its record are written last: refuse now, not then
    checks = check_models(models, release)
    records = manifest.model_records(models, bool(release.init_file))
    outcomes: list[Outcome | None] = [_finished(run, records, release.every_iteration) for run in runs]
    session = None
    if any(o is None for o in outcomes):
        session = Session(models, labels)
        for run, outcome in zip(runs, outcomes, strict=True):
            if outcome is None:
                session.check(run, overwrite)  # every panel is checked before the first one runs
    device = session.device if session is not None else _device_of(outcomes)
    frames: list[np.ndarray] = []
    if release.every_iteration and outcomes[0] is not None:
        with np.load(_frames_path(runs[0])) as z:
            frames.extend(z["frames"])
    pending = [k for k, o in enumerate(outcomes) if o is None]
    for group in ([pending[i] for i in ks] for ks in batches([runs[k] for k in pending], batch)):

        def on_iteration(it: Iteration, k: int = group[0]) -> None:
            if release.every_iteration:  # one panel: every iteration of it is a tile
                frames.append(it.stepped[0].copy())  # act_max.py's debug frame
            if progress is not None:
                progress(k, it)

        assert session is not None
        made = session.run_batch([runs[k] for k in group], on_iteration, overwrite=overwrite)
        for k, result in zip(group, made, strict=True):
            if isinstance(result, Exception):
                raise result
            outcomes[k] = result
        if release.every_iteration:
            write_atomic(_frames_path(runs[0]), npz_bytes(frames=np.stack(frames).astype(np.float32)))
    done = [o for o in outcomes if o is not None]

    if release.every_iteration:
        acts = [float(a) for a in done[0].activations]
        tiles = [to_display(f) for f in frames]
        tile_labels = [f"{a:.2f}" for a in acts]
        # act_max.py also wrote the saved result as one more frame; the released montage shows it unlabelled.
        tiles.append(to_display(np.load(done[0].paths["npz"])["image"][0]))
        tile_labels.append("")
    else:
        acts = []
        tiles, tile_labels = [], []
        for run, outcome in zip(runs, done, strict=True):
            image = np.load(outcome.paths["npz"])["image"][0]
            if outcome.receptive_field is not None:
                top, left, h, w = outcome.receptive_field
                image = image[:, top : top + h, left : left + w]
            tiles.append(to_display(image))
            tile_labels.append(label_of(labels, run.unit))
    geometry = montage.RELEASED_GEOMETRY[release.name]
    montage.save(montage.render(tiles, tile_labels, geometry), path)
    panels = [(run.unit, label_of(labels, run.unit), float(o.activations[-1]))
              for run, o in zip(runs, done, strict=True)]
    result = Reproduction(release, path, panels, checks, acts, shortened=bool(n_iters and n_iters != release.n_iters))
    manifest.write(output_dir / f"{release.name}.json", {
        "release": release.name, "montage": path.name, "reproduction": result.is_reproduction,
        "n_iters": runs[0].n_iters, "shortened": result.shortened,
        "model_checks": [{"path": str(c.path), "verdict": c.verdict, "detail": c.detail} for c in checks],
        "panels": [{"unit": u, "label": lab, "final_activation": a} for u, lab, a in panels],
        "trajectory": acts, "device": device,
        "runs": [o.paths["json"].name for o in done],
    })
    return result


def _device_of(outcomes: list[Outcome | None]) -> str:
    """The device the panels were made on, when all were read back from an earlier run."""
    return next((o.device for o in outcomes if o is not None), "unknown")
