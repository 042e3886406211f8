"""``dgn-am layers``: every blob of a net, with its units, receptive field, and what dgn-am can do with it."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("layers", help="list a net's blobs: shape, units, receptive field, target or code layer",
                       description="List every blob of a Caffe net in order: its shape, how many units it has "
                       "(channels of a spatial blob), the receptive field of one unit on the input image (size, "
                       "stride and offset of unit 0, before clipping), and whether it can be a target layer "
                       "(--act_layer) or a code layer (--opt_layer) of dgn-am.")
    p.add_argument("definition", type=Path, metavar="NET.prototxt", help="the net definition")
    p.add_argument("--weights", type=Path, default=None,
                   help="a caffemodel to check against the net first (default: none, the definition alone)")
    p.set_defaults(func=run)


def _axes(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def run(a: argparse.Namespace) -> int:
    from ..backend.summary import summarize

    summary = summarize(a.definition, a.weights)
    rows = [("blob", "shape", "units", "field size", "stride", "offset", "target", "code")]
    for r in summary.rows:
        f = r.field
        if f is None:
            size = stride = offset = "-"
        elif f.whole:
            size, stride, offset = "whole image", "-", "-"
        else:
            size, stride, offset = _axes(f.size), _axes(f.stride), _axes(f.offset)
        rows.append((r.name, "x".join(map(str, r.shape)), str(r.units), size, stride, offset,
                     "yes" if r.target else "-", "yes" if r.code else "-"))
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    for row in rows:
        cells = zip(row, widths, strict=True)
        print("  ".join(cell.ljust(w) if k == 0 else cell.rjust(w) for k, (cell, w) in enumerate(cells)))
    print(f"{len(summary.rows)} blobs of {summary.path}; input '{summary.input_blob}'")
    return 0
