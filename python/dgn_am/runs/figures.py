"""The paper's figures as recipes: which units, starts and settings each image takes, and where each came from.

Every recipe states its settings' provenance, because most were never published: ``released`` (the
authors' act_max scripts and examples: fc6 code, L2 0.99, learning rate 8 -> 1e-10 over 200 iterations,
the 3x fc6 act_range bound, no clipping), ``paper`` (what the paper's figure itself shows, such as how many
starts per unit), or ``chosen`` (unpublished: picked here, and said so in the output and the figure's
record). A figure's runs are a sweep's runs (resumable, sharded, batched: ``sweep.run``);
``figure_runs`` draws the montages in the figure's layout once all of them exist.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..common import paths
from ..common.errors import InputError
from .run import Run, check_value

#: The seed of s18's draw of 120 fc8 units (the paper does not list its 120).
S18_SEED = 18

#: One image of a figure: its code layer (the prior), target layer, spatial position, unit, seed, and the second
#: unit it drives at once with its gamma (None and 0.0 for one unit alone: S8's Eq. 2 is for the pair figures).
Cell = tuple[str, str, int, int, int, int | None, float]

#: The layers of CaffeNet and Places205 AlexNet with their centre position (a conv blob's middle unit).
ALEXNET_LAYERS = (("conv1", 27), ("conv2", 13), ("conv3", 6), ("conv4", 6), ("conv5", 6), ("fc6", 0), ("fc7", 0),
                  ("fc8", 0))

#: The settings every recipe takes from the authors' released scripts.
RELEASED = "released: the authors' act_max scripts (fc6 code, L2 0.99, lr 8 -> 1e-10, 200 iterations, 3x fc6 bound)"

#: The pair figures' gamma grid: the paper never published its gamma, so a few values are run (``--gamma``).
GAMMAS = (0.0, 0.5, 1.0)


@dataclass(frozen=True)
class Figure:
    """One figure: its units and starts, its layout, and where each of its settings came from.

    Every unit runs from every seed. ``split``: one montage per unit (fig5's 3 x 3 grids), else one
    montage of all, a unit's starts side by side; ``columns`` tiles to a row. ``tile``: ``full`` (the
    227 px crop the net sees) or ``rf`` (a conv unit's receptive field). ``layers``: a figure over several
    layers (s14), each ``(layer, xy, units)`` with its own montage strip; ``act_layer`` and ``units`` are then
    its first layer's. ``priors``: a figure over several generators (s13), each ``(opt_layer, bound)`` with
    its own montage and its own subfolder (the released file names do not hold the code layer).
    ``partners``: a two-unit figure (fig4, s11, s12; S8, Eq. 2): its one unit drives each partner at once,
    for each of ``gammas``; its montage has each unit alone on top, then a row of pairs per gamma, each pair
    under its partner alone (``columns`` is the partners plus one).
    """

    name: str
    title: str
    net: str
    act_layer: str
    units: tuple[int, ...]
    seeds: tuple[int, ...]
    columns: int
    provenance: dict[str, str]
    split: bool = False
    xy: int = 0
    tile: str = "full"
    n_iters: int = 200
    start_lr: float = 8.0
    end_lr: float = 1e-10
    L2: float = 0.99
    bound: str = "act_range/3x/fc6.txt"
    layers: tuple[tuple[str, int, tuple[int, ...]], ...] = ()
    priors: tuple[tuple[str, str], ...] = ()
    partners: tuple[int, ...] = ()
    gammas: tuple[float, ...] = ()

    def groups(self) -> list[tuple[str, list[Cell]]]:
        """The montages, each a name and its cells (opt_layer, layer, xy, unit, seed, unit2, gamma) in row-major
        order (a pair figure's cells without the gaps its montage leaves under the main unit alone)."""
        if self.layers:
            return [(f"{self.name}_{layer.replace('/', '_')}", [("fc6", layer, xy, u, s, None, 0.0)
                     for u in units for s in self.seeds]) for layer, xy, units in self.layers]
        if self.priors:
            return [(f"{self.name}_{opt}", [(opt, self.act_layer, self.xy, u, s, None, 0.0)
                                            for u in self.units for s in self.seeds]) for opt, _ in self.priors]
        if self.partners:
            alone = [("fc6", self.act_layer, self.xy, u, s, None, 0.0) for u in (*self.units, *self.partners)
                     for s in self.seeds]
            pairs = [("fc6", self.act_layer, self.xy, self.units[0], s, p, g) for g in self.gammas
                     for p in self.partners for s in self.seeds]
            return [(self.name, alone + pairs)]
        rows = [[("fc6", self.act_layer, self.xy, u, s, None, 0.0) for s in self.seeds] for u in self.units]
        if self.split:
            return [(f"{self.name}_{row[0][3]:04d}", row) for row in rows]
        return [(self.name, [cell for row in rows for cell in row])]

    def runs(self, output_dir: Path, n_iters: int | None = None) -> list[Run]:
        """Every run of the figure, in the order of its montages (``n_iters`` shortens them)."""
        base = Run(unit=0, n_iters=n_iters or self.n_iters, L2=self.L2, start_lr=self.start_lr, end_lr=self.end_lr,
                   opt_layer="fc6", act_layer=self.act_layer, output_dir=output_dir)
        bounds = dict(self.priors) or {"fc6": self.bound}
        return [replace(base, opt_layer=opt, act_layer=layer, x=xy, y=xy, unit=u, seed=s, unit2=u2, gamma=g,
                        bound=paths.released(bounds[opt]), output_dir=output_dir / opt if self.priors else output_dir)
                for _, cells in self.groups() for opt, layer, xy, u, s, u2, g in cells]

    def with_units(self, units: list[int]) -> Figure:
        """The same figure for other units (``--units``); a pair figure refuses, since its partners were chosen
        for its one unit and swapping that unit alone would make a pairing nobody chose."""
        if self.layers:
            raise InputError(f"{self.name} draws its units per layer; --units does not apply to it")
        if self.partners:
            raise InputError(f"{self.name} pairs unit {self.units[0]} with its partners; --units does not apply to "
                             f"it (dgn-am sweep --units A,B --pairs A:B --gamma G makes other pairs)")
        if not units:
            raise InputError("--units is empty")
        return replace(self, units=tuple(dict.fromkeys(units)),
                       provenance={**self.provenance, "units": "chosen: given with --units"})

    def with_gammas(self, gammas: list[float]) -> Figure:
        """The same pair figure for another gamma grid (``--gamma``); a one-unit figure has no gamma to set."""
        if not self.partners:
            pair_figures = ", ".join(f.name for f in recipes().values() if f.partners)
            raise InputError(f"{self.name} drives one unit per image; --gamma applies only to {pair_figures}")
        if not gammas:
            raise InputError("--gamma is empty")
        for g in gammas:
            check_value("gamma", g)
        grid = tuple(float(g) for g in dict.fromkeys(gammas))
        return replace(self, gammas=grid, provenance={
            **self.provenance, "gamma": f"chosen: given with --gamma ({', '.join(map(repr, grid))}); the paper's "
                                        "is unpublished (synthesizing issue #4)"})


def _s18() -> Figure:
    units = np.random.default_rng(S18_SEED).choice(1000, size=120, replace=False).tolist()
    return Figure("s18", "120 CaffeNet fc8 units drawn at random, one start each", "caffenet", "fc8",
                  tuple(int(u) for u in units), (0,), 12,
                  {"units": f"chosen: 120 of 1000 drawn without replacement, numpy default_rng({S18_SEED}) "
                            "(the paper does not list its 120)",
                   "seeds": "released: seed 0", "settings": RELEASED, "layout": "chosen: 12 columns x 10 rows"})


EXAMPLE1_UNITS = (643, 624, 304, 629, 437)


def _starts(name: str, title: str, starts: int, columns: int, note: str) -> Figure:
    return Figure(name, title, "caffenet", "fc8", EXAMPLE1_UNITS, tuple(range(starts)), columns,
                  {"units": "chosen: example 1's units (643 mask, 624 library, 304 leaf beetle, 629 lipstick, "
                            "437 beacon); --units for others", "seeds": note, "settings": RELEASED},
                  split=True)


def _s16() -> Figure:
    return Figure("s16", "Places205 AlexNet conv5 units at (6, 6), five starts each, a row per unit", "places205",
                  "conv5", (8, 55, 154, 181, 45), tuple(range(5)), 5,
                  {"units": "released: example 4's Places205 conv5 units 8, 55, 154, 181, 45 at (6, 6)",
                   "seeds": "chosen: starts 0-4", "settings": RELEASED,
                   "tile": "released: each image cropped to the unit's receptive field (163 px), as in example 4"},
                  xy=6, tile="rf")


def _layers(name: str, net: str, classes: int, seed: int) -> Figure:
    sizes = {"conv1": 96, "conv2": 256, "conv3": 384, "conv4": 384, "conv5": 256, "fc6": 4096, "fc7": 4096,
             "fc8": classes}
    rng = np.random.default_rng(seed)
    layers = tuple((layer, xy, tuple(int(u) for u in rng.choice(sizes[layer], 5, replace=False)))
                   for layer, xy in ALEXNET_LAYERS)
    title = f"{'CaffeNet' if net == 'caffenet' else 'Places205 AlexNet'}: five units of each of its eight layers"
    return Figure(name, title, net, "conv1", layers[0][2], (0,), 5,
                  {"units": f"chosen: five per layer drawn without replacement, numpy default_rng({seed}); conv "
                            "units at their blob's centre (conv1 27, conv2 13, conv3-5 6)",
                   "seeds": "released: seed 0", "settings": RELEASED,
                   "tile": "paper: each image cropped to its unit's receptive field, shown at that size, a strip "
                           "per layer"},
                  tile="rf", layers=layers)


def _s13() -> Figure:
    priors = (("pool5", "act_range/3x/conv5.txt"), ("fc6", "act_range/3x/fc6.txt"), ("fc7", "act_range/3x/fc7.txt"))
    return Figure("s13", "the same units through each prior: pool5 (the paper's \"conv5\"), fc6, fc7", "caffenet",
                  "fc8", EXAMPLE1_UNITS, (0,), 5,
                  {"units": "chosen: example 1's units; --units for others", "seeds": "released: seed 0",
                   "settings": RELEASED.replace(", 3x fc6 bound", ""),
                   "priors": "released: the pool5, fc6 and fc7 generators the authors' download script extracts, "
                             "each bounded by its own layer's 3x act_range file (conv5.txt holds pool5's 9216 values); "
                             "conv3/conv4 are not in that release's extraction"},
                  priors=priors)


CLASSES = {470: "candle", 10: "brambling", 1: "goldfish", 122: "American lobster", 945: "bell pepper", 968: "cup",
           846: "table lamp", 30: "bullfrog", 381: "spider monkey", 353: "gazelle", 983: "scuba diver"}


def _pairs(name: str, unit: int, partners: tuple[int, ...]) -> Figure:
    """A two-unit figure: ``unit`` with each partner at once (S8, Eq. 2), over the default gamma grid."""
    *others, last = (CLASSES[p] for p in partners)
    with_whom = f"{', '.join(others)} and {last}" if others else last
    named = ", ".join(f"{CLASSES[u]} {u}" for u in (unit, *partners))
    return Figure(name, f"two units at once: {CLASSES[unit]} with {with_whom}, a row per gamma", "caffenet", "fc8",
                  (unit,), (0,), len(partners) + 1,
                  {"units": f"chosen: the captions name these classes (FACTS §10: {named}) but which partners each "
                            f"panel pairs is not recorded here; {CLASSES[unit]} with each of them is this recipe's "
                            "pairing, not the paper's; dgn-am sweep --units/--pairs for others",
                   "seeds": "released: seed 0", "settings": RELEASED,
                   "gamma": "chosen: unpublished (synthesizing issue #4); grid 0, 0.5, 1 by default, --gamma to "
                            "change",
                   "objective": "paper: Eq. 2 two-neuron objective; never released, implemented here as "
                                "a1 + a2 - gamma * |a1 - a2| (core/objectives.py PairObjective)",
                   "layout": "chosen: each unit alone on top; below, a row per gamma of the pairs, each under its "
                             "partner alone"},
                  partners=partners, gammas=GAMMAS)


def recipes() -> dict[str, Figure]:
    """Every figure ``dgn-am figure`` can make, by name."""
    figures = (
        _s18(),
        _starts("fig5", "nine random starts per unit, in 3 x 3 grids", 9, 3,
                "paper: nine starts per unit; seeds 0-8 as the authors' scripts loop them ({0..8}, commented out)"),
        _starts("s10", "four random starts per unit, in 2 x 2 grids", 4, 2,
                "paper: four starts per unit; seeds 0-3 chosen"),
        _s16(),
        _s13(),
        _layers("s14", "caffenet", 1000, 14),
        _layers("s15", "places205", 205, 15),
        _pairs("fig4", 470, (1, 122)),
        _pairs("s11", 470, (1, 122, 945, 968, 846)),
        _pairs("s12", 10, (1, 30, 381, 353, 983)),
    )
    return {f.name: f for f in figures}


def select(name: str) -> Figure:
    known = recipes()
    if name not in known:
        raise InputError(f"unknown figure '{name}'; choose from {', '.join(known)}")
    return known[name]
