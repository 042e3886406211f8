"""``dgn-am demo``: DGN-AM on every class of the miniature model, offline, as a labelled montage and a gallery.

The target net is E, the generator G (trained to invert E's fc6, ``dgn_am.mini.gan``), and each class
k of E's fc8 gets one run of the released algorithm (``dgn_am.runs.session``, unchanged) from the random
start code of ``seed``, with the code bounded by E's fc6 act-range (``fc6_bounds.txt``, mean + 1 std).
The settings (``DemoSettings``) are act_max.py's schedule (a learning rate falling linearly from
``start_lr`` to ``end_lr``, L2 decay, clipping) shortened to 200 iterations, well inside the 2-minute
budget on 2 CPU cores. The learning rate, decay and bound were chosen on the committed G over seeds 1-5
(the demo itself runs seed 0), by the share of images the independent classifier recognizes; the
README has the table.

``evaluate`` then asks an independently trained classifier (different architecture and seed) what each
synthesized image shows, and compares each image's target activation with real held-out images of the
class (``dgn_am.mini.evaluate``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import backend as cb
from ..assets.models import Models, require
from ..common import paths
from ..common.errors import InputError, read_input
from ..common.files import check_destination, ensure_writable_dir
from ..core.algorithm import Iteration
from ..core.pixels import to_display
from ..results import gallery, montage
from ..runs.run import Run, batches, check_value, validate
from ..runs.session import Session
from . import data, evaluate, solvers

#: How to regenerate the shipped files, for the error a missing one gets.
REGENERATE = ".venv/bin/python -m dgn_am.mini.train all"
#: Tiles are shown at this multiple of 64 px (nearest neighbour) so the montage is readable.
TILE_ZOOM = 2
MONTAGE_NAME = "montage.png"


@dataclass(frozen=True)
class DemoSettings:
    """act_max.py's settings for every class (opt layer fc6, target E's fc8, code bounded by fc6_bounds.txt)."""

    n_iters: int = 200
    start_lr: float = 1.0
    end_lr: float = 1e-10
    L2: float = 0.97
    seed: int = 0


@dataclass(frozen=True)
class MiniFiles:
    """The miniature model's files: definitions in prototxt/mini, weights and data in nets/mini."""

    prototxt: Path
    nets: Path

    @classmethod
    def default(cls) -> MiniFiles:
        return cls.at(paths.MINI_NETS)

    @classmethod
    def at(cls, nets: Path) -> MiniFiles:
        """The shipped definitions with the weights in ``nets`` (e.g. ``train all --out_dir nets``'s)."""
        return cls(paths.PROTOTXT / "mini", Path(nets))

    def models(self) -> Models:
        encoder = (self.prototxt / "encoder.prototxt", self.nets / "encoder.caffemodel")
        return Models(net_definition=encoder[0], net_weights=encoder[1],
                      generator_definition=self.prototxt / "generator.prototxt",
                      generator_weights=self.nets / "generator.caffemodel",
                      encoder_definition=encoder[0], encoder_weights=encoder[1])

    @property
    def bounds(self) -> Path:
        return self.nets / "fc6_bounds.txt"

    @property
    def labels(self) -> Path:
        return self.nets / "labels.txt"

    @property
    def classifier(self) -> tuple[Path, Path]:
        return self.prototxt / "classifier.prototxt", self.nets / "classifier.caffemodel"

    def check(self, evaluate: bool) -> None:
        """Every file the demo needs exists, or one InputError naming the missing ones and the fix."""
        m = self.models()
        needed = [m.net_definition, m.net_weights, m.generator_definition, m.generator_weights, self.bounds,
                  self.labels]
        if evaluate:
            needed += list(self.classifier)
        out = "" if self.nets == paths.MINI_NETS else f" --out_dir {self.nets}"
        require(needed, "miniature model files", fix=f"regenerate them with '{REGENERATE}{out}' (or "
                "'scripts/make_prototxts.py' for the prototxts)")

    def class_names(self) -> list[str]:
        names = [line.strip() for line in str(read_input(self.labels, "label file")).splitlines() if line.strip()]
        if not names:
            raise InputError(f"label file {self.labels} is empty")
        return names


@dataclass
class ClassResult:
    unit: int
    label: str
    activation: float  # E's fc8 unit at the saved image
    image: np.ndarray  # the saved image, 1 x 3 x 64 x 64 BGR, pixel scale
    png: Path


@dataclass
class Evaluation:
    rows: list[evaluate.ClassRow]
    share: float
    threshold: float
    heldout_images: int

    @property
    def passed(self) -> bool:
        return self.share >= self.threshold

    @property
    def median_ratio(self) -> float:
        return evaluate.median_ratio(self.rows)


@dataclass
class DemoResult:
    classes: list[ClassResult]
    montage: Path
    gallery: Path
    settings: DemoSettings
    device: str
    seconds: float
    evaluation: Evaluation | None = None


#: progress(class index, number of classes, the iteration just done)
Progress = Callable[[int, int, Iteration], None]


def class_runs(settings: DemoSettings, files: MiniFiles, output_dir: Path, n_classes: int) -> list[Run]:
    """The demo's run for each class of E's fc8."""
    return [Run(unit=unit, n_iters=settings.n_iters, L2=settings.L2, start_lr=settings.start_lr,
                end_lr=settings.end_lr, seed=settings.seed, opt_layer="fc6", act_layer="fc8",
                bound=files.bounds, output_dir=output_dir) for unit in range(n_classes)]


def synthesize_classes(files: MiniFiles, output_dir: Path, settings: DemoSettings,
                       progress: Progress | None = None, overwrite: bool = False,
                       before: Callable[[], None] | None = None, batch: int = 1) -> tuple[list[ClassResult], str]:
    """One DGN-AM run per class of E's fc8, each written (image, npz, manifest) into ``output_dir``.

    ``batch``: that many classes share each forward/backward pass (1, the default, runs each alone).

    Every run is checked before the first one writes; ``before`` is called then, for the caller's own
    checks (the demo's evaluation models), so that nothing is written when any of them fails.
    """
    names = files.class_names()
    session = Session(files.models(), dict(enumerate(names)))
    n_classes = int(session.net_info.blobs["fc8"][1])
    if n_classes != len(names):
        raise InputError(f"{files.labels} names {len(names)} classes but E's fc8 has {n_classes} units")
    runs = class_runs(settings, files, output_dir, n_classes)
    for run in runs:
        session.check(run, overwrite)
    if before is not None:
        before()
    results = []
    for group in batches(runs, batch):
        hook = None if progress is None else (lambda it, u=group[0]: progress(u, n_classes, it))
        made = session.run_batch([runs[u] for u in group], hook, overwrite=overwrite)
        for unit, out in zip(group, made, strict=True):
            if isinstance(out, Exception):
                raise out
            assert out is not None  # only resume=True returns None
            with np.load(out.paths["npz"]) as saved:
                image = saved["image"].copy()
            results.append(ClassResult(unit, names[unit], float(out.activations[-1]), image, out.paths["png"]))
    return results, session.device


def montage_geometry(count: int, columns: int = 5) -> montage.Geometry:
    """A montage layout for ``count`` zoomed 64 px tiles with small labels."""
    return montage.grid_geometry("mini", 64 * TILE_ZOOM, count, columns)


def write_montage(classes: list[ClassResult], path: Path) -> Path:
    """The synthesized images side by side, each labelled with its class and final activation."""
    tiles = [np.repeat(np.repeat(to_display(c.image[0]), TILE_ZOOM, axis=0), TILE_ZOOM, axis=1) for c in classes]
    labels = [f"{c.label} ({c.activation:.1f})" for c in classes]
    return montage.save(montage.render(tiles, labels, montage_geometry(len(classes))), path)


def evaluate_classes(files: MiniFiles, classes: list[ClassResult], heldout_per_class: int | None = None,
                     data_seed: int | None = None) -> Evaluation:
    """The independent classifier's verdict on each synthesized image, and E's activations on real ones."""
    from .data import DATA_SEED, HELDOUT_PER_CLASS

    names = files.class_names()
    images = np.concatenate([c.image for c in classes])
    judge, _ = cb.load_net(*files.classifier)
    probabilities = solvers.forward_all(judge, images, "prob", batch=len(images))

    heldout, labels = data.make_split("heldout", heldout_per_class or HELDOUT_PER_CLASS,
                                      DATA_SEED if data_seed is None else data_seed)
    m = files.models()
    encoder, _ = cb.load_net(m.net_definition, m.net_weights)
    real = solvers.forward_all(encoder, data.to_blob(heldout), "fc8", batch=200)
    synthetic = solvers.forward_all(encoder, images, "fc8", batch=len(images)).reshape(len(images), -1)
    units = [c.unit for c in classes]
    rows = evaluate.class_rows(units, names, synthetic[np.arange(len(units)), units],
                               evaluate.real_medians(real, labels, len(names)), probabilities)
    share = evaluate.share_recognized(probabilities, np.array(units))
    return Evaluation(rows, share, evaluate.SHARE_THRESHOLD, len(heldout))


def run_demo(output_dir: Path, settings: DemoSettings | None = None, evaluate_: bool = False,
             progress: Progress | None = None, files: MiniFiles | None = None,
             overwrite: bool = False, batch: int = 1) -> DemoResult:
    """The whole demo: synthesize every class, write the montage and the gallery, optionally evaluate.

    Everything it needs is checked before the first file is written: the settings, the model files
    (the judge's too, with ``evaluate_``), every class's run and the montage's and gallery's names.
    """
    settings = settings or DemoSettings()
    files = files or MiniFiles.default()
    validate(class_runs(settings, files, Path(output_dir), 1)[0])
    check_value("batch", batch)
    files.check(evaluate_)
    output_dir = ensure_writable_dir(Path(output_dir))
    for name in (MONTAGE_NAME, gallery.INDEX):
        check_destination(output_dir / name)

    def check_judge() -> None:
        if evaluate_:
            cb.check_model(*files.classifier)

    started = time.perf_counter()
    classes, device = synthesize_classes(files, output_dir, settings, progress, overwrite, check_judge, batch)
    path = write_montage(classes, output_dir / MONTAGE_NAME)
    page = gallery.write(output_dir, "DGN-AM on the miniature model (dgn-am demo)",
                         labels={c.unit: c.label for c in classes})
    evaluation = evaluate_classes(files, classes) if evaluate_ else None
    return DemoResult(classes, path, page, settings, device, time.perf_counter() - started, evaluation)
