"""Net definitions (prototxt) checked before Caffe sees them, and their image geometry.

Caffe aborts the whole process on a failed CHECK, so a prototxt is parsed and checked here first
(layer types, engines, duplicate names), and given to Caffe as a copy with ``force_backward`` set
when DGN-AM needs gradients back to the input.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..common import cache as disk_cache
from ..common.errors import InputError, read_input
from .netinfo import SpatialLayer
from .runtime import build_info, caffe, proto

_ENGINE_PARAMS = ("convolution_param", "pooling_param", "relu_param", "sigmoid_param", "tanh_param",
                  "softmax_param", "lrn_param")


def parse_definition(path: Path) -> Any:
    """Parse a prototxt and check what Caffe would otherwise abort on: layer types, engines, names.

    Parsed and checked once per file version in a process (a session asks for each net several
    times); every caller gets its own copy to change.
    """
    try:
        identity = disk_cache.file_identity(path)
    except OSError:
        identity = None  # read_input below says what is wrong with the path, in one line
    parsed = _parse_definition(Path(path), identity) if identity else _parse_definition.__wrapped__(Path(path), None)
    net = proto().NetParameter()
    net.CopyFrom(parsed)
    return net


@cache
def _parse_definition(path: Path, identity: str | None) -> Any:
    from google.protobuf import text_format

    pb = proto()
    text = read_input(path, "net definition")
    net = pb.NetParameter()
    try:
        text_format.Parse(text, net)
    except text_format.ParseError as exc:
        raise InputError(f"net definition {path} is not a valid prototxt: {exc}") from None
    if net.layers:
        raise InputError(
            f"net definition {path} uses the pre-2015 'layers' format; upgrade it with upgrade_net_proto_text"
        )
    known = set(caffe().layer_type_list())
    cudnn = build_info().get("cudnn", False)
    seen: set[str] = set()
    for layer in net.layer:
        if layer.name in seen:
            # Caffe would build both, but copies weights only into the first and pycaffe's params
            # keep only the last: the two halves of the tool would disagree about the net.
            raise InputError(f"net definition {path} has two layers named '{layer.name}'; layer names must be unique")
        seen.add(layer.name)
        if layer.type not in known:
            raise InputError(f"net definition {path}: layer '{layer.name}' has unknown type '{layer.type}'")
        for field in _ENGINE_PARAMS:
            if layer.HasField(field) and getattr(layer, field).engine == 2 and not cudnn:  # 2 = CUDNN
                raise InputError(
                    f"net definition {path}: layer '{layer.name}' asks for engine CUDNN, but this Caffe "
                    "was built without cuDNN; delete its 'engine: CUDNN' line"
                )
    return net


@dataclass(frozen=True)
class Definition:
    """A user's prototxt and the file Caffe is given for it.

    DGN-AM needs gradients all the way back to the net's input, which Caffe computes only with
    ``force_backward: true``; without it (most deploy prototxts) every image gradient is zero. Such
    a definition is given to Caffe as a copy with the flag set, and the run manifest says so.
    """

    path: Path
    built: Path
    force_backward_added: bool = False


_copies: list[Path] = []


def _scratch() -> Path:
    """A folder for this process's rewritten prototxts, removed when the process exits."""
    if not _copies:
        import atexit
        import shutil
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="dgn-am-nets-"))
        atexit.register(shutil.rmtree, folder, True)
        _copies.append(folder)
    return _copies[0]


def prepare_definition(path: Path, backward: bool) -> Definition:
    """Check ``path`` and, when ``backward`` is needed and the file lacks force_backward, a copy that sets it."""
    from google.protobuf import text_format

    net = parse_definition(path)
    if not backward or net.force_backward:
        return Definition(Path(path), Path(path))
    net.force_backward = True
    text = text_format.MessageToString(net)
    copy = _scratch() / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}_{Path(path).name}"
    if not copy.exists():
        copy.write_text(text)
    return Definition(Path(path), copy, force_backward_added=True)


def spatial_layers(path: Path) -> list[SpatialLayer]:
    """The net's layers reduced to their image geometry, for receptive-field arithmetic."""
    net = parse_definition(path)
    out = []
    for layer in net.layer:
        kw: dict[str, Any] = {}
        if layer.type in ("Convolution", "Deconvolution"):
            cp = layer.convolution_param
            dil = cp.dilation[0] if cp.dilation else 1
            k = (cp.kernel_h, cp.kernel_w) if cp.kernel_h else (cp.kernel_size[0],) * 2
            kw["kernel"] = (dil * (k[0] - 1) + 1, dil * (k[1] - 1) + 1)
            kw["stride"] = (cp.stride_h, cp.stride_w) if cp.stride_h else ((cp.stride[0],) * 2 if cp.stride else (1, 1))
            kw["pad"] = (cp.pad_h, cp.pad_w) if cp.pad_h or cp.pad_w else ((cp.pad[0],) * 2 if cp.pad else (0, 0))
        elif layer.type == "Pooling":
            pp = layer.pooling_param
            kw["whole"] = pp.global_pooling
            kw["kernel"] = (pp.kernel_h, pp.kernel_w) if pp.kernel_h else (pp.kernel_size,) * 2
            kw["stride"] = (pp.stride_h, pp.stride_w) if pp.stride_h else (pp.stride,) * 2
            kw["pad"] = (pp.pad_h, pp.pad_w) if pp.pad_h or pp.pad_w else (pp.pad,) * 2
        elif layer.type == "InnerProduct":
            kw["whole"] = True
        elif layer.type == "LRN" and layer.lrn_param.norm_region == 1:  # WITHIN_CHANNEL: a spatial window
            size = layer.lrn_param.local_size
            kw.update(kernel=(size, size), pad=((size - 1) // 2,) * 2)
            out.append(SpatialLayer(layer.name, "Pooling", tuple(layer.bottom), tuple(layer.top), **kw))
            continue
        out.append(SpatialLayer(layer.name, layer.type, tuple(layer.bottom), tuple(layer.top), **kw))
    return out
