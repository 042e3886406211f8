"""Making a figure: its runs as a sweep (resumable, sharded, batched), then its montages and its record.

Everything a figure writes is checked before its first run: the runs (by ``sweep.run``) and the names
of its montages and record. The montages are drawn once every run of the figure exists (the last shard
to finish draws them); the record (``<figure>.json``) lists the runs, the montages, the settings and
where each setting came from, and says whether the runs were shortened.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..assets.labels import label_of
from ..assets.models import Models
from ..common.errors import InputError
from ..common.files import check_destination, ensure_writable_dir, write_atomic
from ..core.pixels import to_display
from ..results import gallery, manifest, montage
from . import figure_real, sweep
from .figures import Cell, Figure
from .grid import Plan, Shard
from .run import Run, check_value


@dataclass
class FigureResult:
    figure: Figure
    folder: Path
    summary: sweep.Summary
    montages: list[Path]
    waiting: int  # runs of other shards the montages wait for
    record: Path


def montage_paths(fig: Figure, folder: Path) -> list[Path]:
    return [folder / f"{name}.jpg" for name, _ in fig.groups()]


def plans(fig: Figure, folder: Path, models_of: Callable[[str], Models], labels: dict[int, str] | None,
          n_iters: int | None = None) -> list[Plan]:
    """One sweep plan per generator the figure uses (one for most figures; s13 has one per prior)."""
    runs = fig.runs(folder, n_iters)
    priors = list(dict.fromkeys(r.opt_layer for r in runs))
    return [Plan([r for r in runs if r.opt_layer == opt], models_of(opt), folder, labels) for opt in priors]


def make(fig: Figure, output_dir: Path, models_of: Callable[[str], Models], shard: Shard | None = None,
         progress: Callable[[sweep.Event], None] | None = None, overwrite: bool = False, batch: int = 1,
         labels: dict[int, str] | None = None, n_iters: int | None = None,
         class_names: dict[int, str] | None = None, images: Path | None = None, mean: str = "imagenet",
         labels_file: Path | None = None) -> FigureResult:
    """Run this shard's part of ``fig`` into ``output_dir/<name>`` and draw its montages when all runs exist.

    ``models_of(opt_layer)``: the nets for each generator. ``labels`` (``--labels``) name every unit of the
    figure; without them, ``class_names`` (the net's class list) name the units of its class layer (fc8)
    only, and any other unit is "layer N".
    """
    if labels is None and class_names and all(cell[1] in gallery.CLASS_LAYERS
                                               for _, cells in fig.groups() for cell in cells):
        labels = class_names
    check_value("batch", batch)  # before the figure's folder is made
    if images is not None:
        figure_real.check(fig, images, labels_file, mean)
    folder = ensure_writable_dir(Path(output_dir) / fig.name)
    record_path = folder / f"{fig.name}.json"
    for path in [*montage_paths(fig, folder), record_path]:
        check_destination(path)
    parts = plans(fig, folder, models_of, labels, n_iters)
    summaries = [sweep.run(p, shard, progress, overwrite=overwrite, batch=batch) for p in parts]
    summary = summaries[0]
    for other in summaries[1:]:
        summary.grid += other.grid
        for name in ("ran", "skipped", "replaced", "busy", "failed"):
            getattr(summary, name).extend(getattr(other, name))
    jobs = [run for p in parts for run in p.jobs]
    waiting = 0
    for p in parts:  # the model records once per generator, not once per run
        seen = manifest.model_records(p.models, False)
        waiting += sum(not sweep.is_finished(run, seen) for run in p.jobs)
    records = {run: manifest.read(run.manifest_path()) for run in jobs}
    drawn = [] if waiting else _draw(fig, folder, jobs, records, labels, class_names)
    real = figure_real.left_out(fig) if images is None else figure_real.make(
        fig, folder, models_of(jobs[0].opt_layer), drawn, images, mean, labels_file)
    record = {
        "figure": fig.name, "title": fig.title, "net": fig.net, "act_layer": fig.act_layer,
        "units": list(fig.units), "seeds": list(fig.seeds), "provenance": fig.provenance,
        "layers": [[layer, xy, list(units)] for layer, xy, units in fig.layers] or None,
        "priors": [list(prior) for prior in fig.priors] or None,
        "partners": list(fig.partners) or None, "gamma": list(fig.gammas) or None,
        "n_iters": jobs[0].n_iters, "shortened": jobs[0].n_iters != fig.n_iters,
        "montages": [m.name for m in drawn], "runs": [str(run.manifest_path().relative_to(folder)) for run in jobs],
        "waiting_for_runs": waiting, "real": real,
    }
    write_atomic(record_path, (json.dumps(record, indent=1) + "\n").encode())
    preface = gallery.Preface(tuple(m.name for m in drawn), tuple(fig.provenance.items()))
    summary.gallery = gallery.write(folder, f"{fig.name}: {fig.title}", labels, preface)
    return FigureResult(fig, folder, summary, drawn, waiting, record_path)


def _tile(fig: Figure, run: Run, record: dict) -> np.ndarray:
    with np.load(run.output_dir / record["results"]["outputs"]["npz"]) as saved:
        image = saved["image"][0]
    rf = record["results"].get("receptive_field")
    if fig.tile == "rf" and rf:
        top, left, h, w = rf
        image = image[:, top : top + h, left : left + w]
    return to_display(image)


def _draw(fig: Figure, folder: Path, runs: list[Run], records: dict, labels: dict[int, str] | None,
          class_names: dict[int, str] | None) -> list[Path]:
    by_cell = {(r.opt_layer, r.act_layer, r.x, r.unit, r.seed, r.unit2, r.gamma): r for r in runs}
    out = []
    for (_, group), path in zip(fig.groups(), montage_paths(fig, folder), strict=True):
        tiles = [_tile(fig, by_cell[cell], records[by_cell[cell]]) for cell in group]
        if len({t.shape for t in tiles}) > 1:
            raise InputError(f"{fig.name}: the units' images differ in size ({sorted({t.shape for t in tiles})}); "
                             "a montage needs one size")
        names = [_name(fig, cell, labels, class_names) for cell in group]
        if fig.partners:
            tiles, names = _gaps(fig, tiles, names)
        out.append(montage.save(montage.render(tiles, names,
                                               _geometry(fig, tiles[0].shape[0], len(tiles))), path))
    return out


def _gaps(fig: Figure, tiles: list[np.ndarray], names: list[str]) -> tuple[list[np.ndarray], list[str]]:
    """A pair figure's montage: a blank, unlabelled tile starts each row of pairs (under the main unit alone),
    so each pair sits under its partner alone and the rows line up with the top one."""
    width = fig.columns  # the units alone: the main unit and each partner
    out_tiles, out_names = tiles[:width], names[:width]
    for i in range(width, len(tiles), width - 1):
        out_tiles += [np.ones_like(tiles[0]), *tiles[i : i + width - 1]]
        out_names += ["", *names[i : i + width - 1]]
    return out_tiles, out_names


def _name(fig: Figure, cell: Cell, labels: dict[int, str] | None, class_names: dict[int, str] | None) -> str:
    """A tile's label: its unit, or both units of a pair and the pair's gamma (and the seed, where several)."""
    _, layer, _, unit, seed, unit2, gamma = cell

    def named(u: int) -> str:
        if labels:
            return label_of(labels, u)
        return label_of(class_names, u) if layer in gallery.CLASS_LAYERS else f"{layer} {u}"

    name = named(unit) if unit2 is None else f"{named(unit)} + {named(unit2)}, gamma {gamma!r}"
    return name if len(fig.seeds) == 1 else f"{name}, seed {seed}"


def _geometry(fig: Figure, tile: int, count: int) -> montage.Geometry:
    """The figure's grid; a strip of small receptive fields (conv1's 11 px) gets labels that fit it."""
    font = max(6, min(15, tile // 4))
    return montage.grid_geometry(fig.name, tile, count, fig.columns, label_h=font + 7, font_size=font,
                                 baseline=font + 1)
