"""The Python API: load a generator and a target net once, synthesize units in memory, save when wanted.

``DGNAM.mini()`` is the committed miniature model (offline, seconds); ``DGNAM.released()`` is CaffeNet
with the released fc6/fc7/pool5 generator (after ``dgn-am download``); ``DGNAM(models, preset)`` takes
any nets. ``synthesize`` returns ``Synthesis`` objects (the image as uint8 RGB, the code, every
iteration's activation) and writes nothing; ``save`` writes one the way ``dgn-am synthesize`` would,
manifest included. The arithmetic is the CLI's: one unit at a time is the released algorithm bit for
bit; ``batch`` > 1 shares each pass and agrees to float32 rounding (README, batching).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .assets.labels import label_of, read_labels
from .assets.models import Models, default_models, downloadable, require
from .common import paths
from .common.errors import InputError
from .core.algorithm import Iteration
from .runs.run import Run, batches, check_value
from .runs.session import Outcome, RunFailed, Session, Synthesis


@dataclass(frozen=True)
class Preset:
    """One setting of act_max.py's options for every unit: the schedule, the decay, the code's bound."""

    n_iters: int
    start_lr: float
    end_lr: float
    L2: float
    act_layer: str = "fc8"
    opt_layer: str = "fc6"
    bound: Path | None = None
    clip: bool = False

    def run(self, unit: int, seed: int = 0) -> Run:
        return Run(unit=unit, n_iters=self.n_iters, L2=self.L2, start_lr=self.start_lr, end_lr=self.end_lr,
                   seed=seed, opt_layer=self.opt_layer, act_layer=self.act_layer, clip=self.clip, bound=self.bound)


def presets() -> dict[str, Preset]:
    """The settings the project ships: ``mini`` (the demo's) and ``caffenet`` (the released example 1's).

    ``caffenet``: fc8 units, L2 0.99, learning rate 8 falling to 1e-10 over 200 iterations, the code
    bounded by the released act_range/3x/fc6 file, as the authors' first example ran.
    """
    from .mini.demo import DemoSettings, MiniFiles

    demo = DemoSettings()
    return {
        "mini": Preset(demo.n_iters, demo.start_lr, demo.end_lr, demo.L2, bound=MiniFiles.default().bounds),
        "caffenet": Preset(200, 8.0, 1e-10, 0.99, bound=paths.released("act_range/3x/fc6.txt")),
    }


class DGNAM:
    """A generator and a target net, loaded and checked once, and the settings every unit runs with."""

    def __init__(self, models: Models, preset: Preset, labels: dict[int, str] | Path | None = None) -> None:
        require(downloadable(models, None, preset.bound))
        self.preset = preset
        self.labels = read_labels(labels) if isinstance(labels, (str, Path)) else dict(labels or {})
        self.session = Session(models, self.labels)

    @classmethod
    def mini(cls) -> DGNAM:
        """The miniature model that ships with the project: E's ten shape classes, its generator G."""
        from .mini.demo import MiniFiles

        files = MiniFiles.default()
        files.check(evaluate=False)
        return cls(files.models(), presets()["mini"], dict(enumerate(files.class_names())))

    @classmethod
    def released(cls, opt_layer: str = "fc6", gpu: int | None = None, preset: Preset | None = None) -> DGNAM:
        """CaffeNet and the released generator of ``opt_layer`` (``dgn-am download`` fetches them)."""
        from .assets.labels import labels_for_net

        base = preset or presets()["caffenet"]
        if preset is None and opt_layer != "fc6":  # the released bound files are per code layer
            base = replace(base, opt_layer=opt_layer, bound=None)
        return cls(default_models(opt_layer, gpu), base, labels_for_net("caffenet"))

    def label(self, unit: int) -> str:
        """The unit's name, or "unit N"."""
        return label_of(self.labels, unit)

    def synthesize(self, units: Iterable[int], seeds: int | Sequence[int] = 0, batch: int = 1,
                   progress: Callable[[Iteration], None] | None = None, **settings: object) -> list[Synthesis]:
        """The preferred image of every unit (for every seed), in memory; nothing is written.

        ``settings`` override the preset for this call (``n_iters=50``, ``L2=0.95``, ...). Every run is
        checked before the first one starts; one that ends in NaN raises ``RunFailed``.
        """
        check_value("batch", batch)
        preset = replace(self.preset, **settings)  # type: ignore[arg-type]
        seed_list = [seeds] if isinstance(seeds, int) else list(seeds)
        runs = [preset.run(int(u), int(s)) for u in units for s in seed_list]
        if not runs:
            raise InputError("no units given")
        for run in runs:
            self.session.check_inputs(run)
        out: list[Synthesis] = []
        for group in batches(runs, batch):
            for result in self.session.synthesize([runs[k] for k in group], progress):
                if isinstance(result, RunFailed):
                    raise result
                out.append(result)
        return out

    def save(self, results: Iterable[Synthesis], output_dir: Path | str, overwrite: bool = False) -> list[Outcome]:
        """Write each result as ``dgn-am synthesize`` would (png, jpg, npz, the manifest last)."""
        return [self.session.save(r, Path(output_dir), overwrite) for r in results]
