"""What each blob of a net is, for choosing layers to visualize (``dgn-am layers``).

A researcher bringing their own Caffe net needs three facts per blob before a run: how many units it
has (the range of ``--unit``), what part of the image one unit sees (its receptive field: which
``--xy`` positions are meaningful and how large the released crop would be), and whether DGN-AM can use
it (a target layer must depend on the image through layers with a backward pass; a code layer must
fit one of the generators that ship with dgn-am). Everything here is read from the net Caffe builds
(in a child process) and from the prototxt, so a net that Caffe refuses gives one line, not an abort.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..common import paths
from ..common.errors import InputError
from .definitions import parse_definition, spatial_layers
from .netinfo import Field, NetInfo, check_backward_path, field_of
from .nets import check_model
from .probing import probe


@dataclass(frozen=True)
class BlobRow:
    """One blob: its shape (batch first), units per sample, receptive field, and what it can be."""

    name: str
    shape: tuple[int, ...]
    units: int  # channels of an N x C x H x W blob (one unit per channel at each x, y), else values per sample
    field: Field | None  # None: the net has no image input, or the path back passes a layer it cannot trace
    target: bool  # an image can change it through layers with a backward pass: a valid --act_layer
    code: bool  # shaped like the input of dgn-am's generator of the same name: a valid --opt_layer


@dataclass(frozen=True)
class NetSummary:
    path: Path
    input_blob: str
    rows: list[BlobRow]


def _input_shape(definition: Path) -> tuple[int, ...] | None:
    """The shape of the first input a prototxt declares (``input_shape`` or an Input layer)."""
    net = parse_definition(definition)
    if net.input_shape:
        return tuple(net.input_shape[0].dim)
    if net.input_dim:
        return tuple(net.input_dim[:4])
    for layer in net.layer:
        if layer.type == "Input" and layer.input_param.shape:
            return tuple(layer.input_param.shape[0].dim)
    return None


def code_shapes() -> dict[str, tuple[int, ...]]:
    """Per code layer, the per-sample shape its generator takes (from the generators' prototxts)."""
    shapes = {}
    for layer in paths.CODE_LAYERS:
        definition = paths.generator_definition(layer)
        shape = _input_shape(definition) if definition.is_file() else None
        if shape:
            shapes[layer] = shape[1:]
    return shapes


def _can_target(info: NetInfo, blob: str, input_blob: str) -> bool:
    if blob == input_blob:
        return False
    try:
        check_backward_path(info, blob, input_blob)
    except InputError:
        return False
    return True


def summarize(definition: Path, weights: Path | None = None) -> NetSummary:
    """Every blob of ``definition`` in Caffe's order; with ``weights``, only once they fit the net."""
    info = probe(definition) if weights is None else check_model(definition, weights)
    if not info.inputs:
        raise InputError(f"net definition {definition} declares no input (input_shape or an Input layer)")
    input_blob = info.inputs[0]
    in_shape = info.blobs[input_blob]
    spatial = spatial_layers(definition) if len(in_shape) == 4 else None
    codes = code_shapes()
    rows = []
    for name, shape in info.blobs.items():
        field = None
        if spatial is not None:
            try:
                field = field_of(spatial, name, (in_shape[2], in_shape[3]), input_blob)
            except InputError:
                field = None
        units = shape[1] if len(shape) == 4 else math.prod(shape[1:])
        rows.append(BlobRow(name, tuple(shape), units, field, _can_target(info, name, input_blob),
                            codes.get(name) == tuple(shape[1:])))
    return NetSummary(Path(definition), input_blob, rows)
