"""The five runs the DGN-AM authors released, with their exact settings (FACTS §6).

Every released run used the fc6 generator, L2 0.99, end_lr 1e-10, seed 0, no clipping and the 3x fc6
activation bounds; they differ in the target net, the layer, the units, the iterations and lr0.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from pathlib import Path

from ..assets.labels import labels_for_net
from ..assets.models import Models, net_models
from ..common import paths
from ..common.errors import InputError
from .run import Run


@dataclass(frozen=True)
class Release:
    name: str
    net: str  # caffenet | places205 | googlenet
    act_layer: str
    units: tuple[int, ...]
    n_iters: int
    start_lr: float
    xy: int = 0
    init_file: str | None = None  # relative to the released data folder
    every_iteration: bool = False  # example 3: the montage shows each iteration of one run

    def runs(self, output_dir: Path, n_iters: int | None = None) -> list[Run]:
        """The panels' runs; ``n_iters`` shortens them for a quick check (no longer the released run)."""
        base = Run(
            unit=self.units[0], n_iters=n_iters or self.n_iters, L2=0.99, start_lr=self.start_lr, end_lr=1e-10, seed=0,
            x=self.xy, y=self.xy, opt_layer="fc6", act_layer=self.act_layer, clip=False,
            debug=self.every_iteration,
            init_file=paths.released(self.init_file) if self.init_file else None,
            bound=paths.released("act_range/3x/fc6.txt"), output_dir=output_dir,
        )
        return [replace(base, unit=u) for u in self.units]


RELEASES: dict[str, Release] = {
    r.name: r
    for r in (
        Release("example1", "caffenet", "fc8", (643, 624, 304, 629, 437), 200, 8.0),
        Release("example2", "places205", "fc8", (2, 7, 8, 12, 71), 200, 8.0),
        Release("example3", "caffenet", "fc8", (945,), 30, 1.0, init_file="images/red_pepper.jpg",
                every_iteration=True),
        Release("example4", "places205", "conv5", (8, 55, 154, 181, 45), 200, 8.0, xy=6),
        Release("example5", "googlenet", "loss3/classifier", (643, 624, 304, 629, 437), 200, 2.0),
    )
}

def select(names: list[str]) -> list[Release]:
    """Releases by name; ``all`` is every one, in order."""
    if "all" in names:
        return list(RELEASES.values())
    unknown = [n for n in names if n not in RELEASES]
    if unknown:
        raise InputError(f"unknown example '{unknown[0]}'; choose from {', '.join(RELEASES)} or all")
    return [RELEASES[n] for n in dict.fromkeys(names)]


def models_for(release: Release, gpu: int | None = None) -> Models:
    return net_models(release.net, gpu)


def labels_for(release: Release) -> dict[int, str]:
    """Unit index to a short class name, from the downloaded label list of the release's net."""
    return labels_for_net(release.net)


def command(models: Models, run: Run) -> str:
    """The exact ``dgn-am synthesize`` line for one panel."""
    args = ["dgn-am", "synthesize", "--unit", str(run.unit), "--n_iters", str(run.n_iters), "--L2", repr(run.L2),
            "--start_lr", repr(run.start_lr), "--end_lr", repr(run.end_lr), "--seed", str(run.seed),
            "--xy", str(run.x), "--opt_layer", run.opt_layer, "--act_layer", run.act_layer,
            "--clip", str(int(run.clip)), "--debug", str(int(run.debug))]
    if run.unit2 is not None:
        args += ["--unit2", str(run.unit2), "--gamma", repr(run.gamma)]
    if run.init_file:
        args += ["--init_file", str(run.init_file)]
    if run.bound:
        args += ["--bound", str(run.bound)]
    args += ["--output_dir", str(run.output_dir), "--net_definition", str(models.net_definition),
             "--net_weights", str(models.net_weights), "--generator_definition", str(models.generator_definition),
             "--generator_weights", str(models.generator_weights)]
    return shlex.join(args)
