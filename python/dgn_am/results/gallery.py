"""``index.html``: every finished run under a folder, as a grid of labelled thumbnails.

The gallery is built only from the run manifests on disk, so the shards of a sweep, each writing into
the same folder, merge into one gallery whenever any of them (or ``dgn-am sweep --gallery-only``)
rewrites it. Class names come from the target net's label list (``dgn-am download released``) when the
unit is a class of a known net; otherwise a unit is called "unit N". Every text is HTML-escaped, links
are relative (the folder can be moved or served as is), and the page is only rewritten when it changes.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..common import locks
from ..common.errors import InputError
from ..common.files import check_destination, write_atomic
from . import manifest

INDEX = "index.html"
LOCK = ".index.html.lock"
#: Blobs whose units are the net's classes, so the label list names them.
CLASS_LAYERS = {"fc8", "prob", "loss3/classifier"}


@dataclass
class Card:
    """One finished run as the gallery shows it."""

    image: str  # link to the PNG, relative to the gallery
    thumb: str  # the receptive-field crop for conv units, else the PNG
    record: str  # link to the manifest
    unit: int
    label: str
    act_layer: str
    activation: float
    parameters: dict[str, Any]

    def key(self) -> tuple:
        p = self.parameters
        return (self.act_layer, self.unit, p.get("x", 0), p.get("y", 0), p.get("seed", 0), p.get("n_iters", 0),
                p.get("L2", 0), p.get("start_lr", 0), p.get("end_lr", 0), self.record)


@cache
def _class_labels(net_definition_name: str, nets_dir: str) -> dict[int, str]:
    from ..assets.catalogue import NETS
    from ..assets.labels import labels_for_net

    for net, (definition, _, _) in NETS.items():
        if definition == net_definition_name:
            try:
                return labels_for_net(net)
            except InputError:  # a damaged label list: the gallery is a view, it names units instead
                return {}
    return {}


def label(record: dict[str, Any], labels: dict[int, str] | None = None) -> str:
    """The unit's name: from ``labels`` (the gallery's ``--labels``), else the run's own ``label`` (its
    ``--labels`` when it ran), else the class name when its layer is a known net's class layer, else "unit N".
    A run that drove two units (``unit2``) is named "A + B, gamma G"."""
    from ..common import paths

    p = record["parameters"]
    unit, unit2 = p["unit"], p.get("unit2")
    own = record.get("label")
    if isinstance(own, str) and own and not labels:
        return own if unit2 is None else f"{own}, gamma {p.get('gamma', 0)!r}"
    target = (record.get("models") or {}).get("target") or {}
    known: dict[int, str] = {}
    if p.get("act_layer") in CLASS_LAYERS and isinstance(target.get("definition"), str):
        known = _class_labels(Path(target["definition"]).name, str(paths.nets_dir()))

    def name(u: int) -> str:
        return (labels or {}).get(u) or known.get(u) or f"unit {u}"

    if isinstance(unit2, int):
        return f"{name(unit)} + {name(unit2)}, gamma {p.get('gamma', 0)!r}"
    return name(unit)


def _link(path: Path, root: Path) -> str:
    return quote(Path(os.path.relpath(path, root)).as_posix())


def _card(path: Path, root: Path, labels: dict[int, str] | None = None) -> Card | None:
    """A card for a run manifest, or None for any other JSON (a montage record, a report, a damaged file)."""
    record = manifest.read(path)
    if not isinstance(record, dict) or record.get("tool") != "dgn-am":
        return None
    params, results = record.get("parameters"), record.get("results")
    if not isinstance(params, dict) or not isinstance(results, dict):
        return None
    outputs = results.get("outputs")
    unit, act = params.get("unit"), results.get("final_activation")
    if (not isinstance(outputs, dict) or not isinstance(outputs.get("png"), str) or not isinstance(unit, int)
            or not isinstance(act, (int, float))):
        return None
    png = path.parent / outputs["png"]
    if not png.is_file():
        return None
    thumb = path.parent / outputs["rf_png"] if isinstance(outputs.get("rf_png"), str) else png
    return Card(_link(png, root), _link(thumb if thumb.is_file() else png, root), _link(path, root), unit,
                label(record, labels), str(params.get("act_layer", "")), float(act), params)


def collect(root: Path, labels: dict[int, str] | None = None) -> list[Card]:
    """Every run manifest under ``root`` (hidden folders and files left out), in a stable order."""
    cards = []
    for path in root.rglob("*.json"):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        card = _card(path, root, labels)
        if card is not None:
            cards.append(card)
    return sorted(cards, key=Card.key)


_STYLE = """
body { font-family: sans-serif; margin: 1em; background: #fafafa; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
figure { margin: 0; width: 180px; background: #fff; border: 1px solid #ddd; padding: 4px; }
figure img { width: 180px; height: 180px; object-fit: contain; display: block; }
figcaption { font-size: 12px; line-height: 1.35; }
.label { font-weight: bold; }
.small { color: #555; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


@dataclass(frozen=True)
class Preface:
    """What a figure's page shows above its runs: its montages, and where each of its settings came from."""

    montages: tuple[str, ...] = ()  # paths relative to the page
    provenance: tuple[tuple[str, str], ...] = ()


def _preface(preface: Preface | None) -> str:
    if preface is None:
        return ""
    images = "".join(f'<p><a href="{_e(m)}"><img src="{_e(m)}" alt="{_e(m)}" style="max-width:100%"></a></p>\n'
                     for m in preface.montages)
    rows = "".join(f"<tr><td><b>{_e(k)}</b></td><td>{_e(v)}</td></tr>\n" for k, v in preface.provenance)
    table = f"<table>\n{rows}</table>\n" if rows else ""
    return images + table


def render(cards: list[Card], title: str, preface: Preface | None = None) -> str:
    """The page; deterministic for the same cards, so an unchanged gallery is not rewritten."""
    figures = []
    for c in cards:
        p = c.parameters
        where = f" at ({p.get('x')}, {p.get('y')})" if c.thumb != c.image else ""
        hyper = (f"{p.get('n_iters')} it · L2 {p.get('L2')!r} · lr {p.get('start_lr')!r} → {p.get('end_lr')!r}"
                 f"{' · clip' if p.get('clip') else ''}")
        name = c.label if c.label == f"unit {c.unit}" else f"{c.unit}: {c.label}"
        figures.append(
            f'<figure><a href="{_e(c.image)}"><img src="{_e(c.thumb)}" alt="{_e(name)}" '
            f'loading="lazy"></a>\n<figcaption><span class="label">{_e(name)}</span><br>'
            f"{_e(c.act_layer)}{_e(where)} · seed {_e(p.get('seed'))}<br>"
            f"activation <b>{_e(f'{c.activation:.2f}')}</b><br>"
            f'<span class="small">{_e(hyper)}</span> <a class="small" href="{_e(c.record)}">json</a>'
            f"</figcaption></figure>"
        )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{_e(title)}</h1>\n{_preface(preface)}"
        f"<p>{len(cards)} finished runs (dgn-am). Click an image for the full size.</p>\n"
        '<div class="grid">\n' + "\n".join(figures) + "\n</div>\n</body>\n</html>\n"
    )


def write(root: Path, title: str | None = None, labels: dict[int, str] | None = None,
          preface: Preface | None = None) -> Path:
    """Write ``root/index.html`` from the manifests under ``root``; returns its path.

    ``labels`` name the units (``--labels``) over what the manifests say (``label``); ``preface`` puts a
    figure's montages and its settings' provenance above the runs.

    Collecting and writing happen under one lock, so of several shards finishing at once the last to
    write has seen every manifest written before it started: the page is never older than the runs.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder of results")
    path = root / INDEX
    check_destination(path)
    with locks.exclusive(root / LOCK):
        page = render(collect(root, labels), title or f"DGN-AM results: {root.absolute().name}", preface).encode()
        try:
            unchanged = path.is_file() and path.read_bytes() == page
        except OSError:
            unchanged = False
        if not unchanged:
            write_atomic(path, page)
    return path
