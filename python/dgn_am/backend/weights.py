"""Caffemodels read the way Caffe's loader will read them, and refused before it could abort on them.

Caffe's weight loading also silently ignores layers it cannot match, so what is parsed here is
compared with the probed net (``netinfo.check_weights``) before ``caffe.Net`` sees the file.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..common import cache as disk_cache
from ..common.errors import InputError, read_input
from .netinfo import WeightBlob, WeightsInfo
from .runtime import caffe, proto

# Caffe reads a caffemodel through a CodedInputStream limited to INT_MAX bytes (io.cpp,
# kProtoReadBytesLimit); a larger file fails to parse there and CHECK-aborts the process.
_PROTO_READ_LIMIT = (1 << 31) - 1
# Net::CopyTrainedLayersFrom picks its HDF5 loader by content (H5Fis_hdf5), not by the file's name: the
# signature at offset 0 or at any power of two from 512 on (where a user block may put it).
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _is_hdf5(data: bytes) -> bool:
    offset = 0
    while offset + len(_HDF5_SIGNATURE) <= len(data):
        if data[offset:offset + len(_HDF5_SIGNATURE)] == _HDF5_SIGNATURE:
            return True
        offset = 512 if offset == 0 else offset * 2
    return False


def _layer_name(name: str | bytes) -> str:
    # upb hands back a proto2 string that is not UTF-8 as bytes; Caffe compares raw bytes, and a
    # surrogate-escaped str can equal no name that Caffe reports, just as those bytes match no layer.
    return name.decode("utf-8", "surrogateescape") if isinstance(name, bytes) else name


def read_weights(path: Path) -> WeightsInfo:
    """What Caffe's loader will see of a caffemodel (``parse_weights``), remembered per file version.

    Parsing CaffeNet's 233 MB in Python takes about 0.5 s, so every process after the first reads the
    description from the cache instead (``cache.file_identity``: any change to the file is a miss).
    """
    try:
        identity = disk_cache.file_identity(path)
    except OSError:
        return parse_weights(path)  # the one-line error for a missing or unreadable file comes from there
    known = disk_cache.get("weights", identity)
    if isinstance(known, dict):
        try:
            return WeightsInfo(path=Path(path), v1=known["v1"], input_layer=known["input_layer"],
                               entries=[(name, [_weight_blob(b) for b in blobs]) for name, blobs in known["entries"]])
        except (KeyError, TypeError, ValueError):
            pass
    info = parse_weights(path)
    entries = [(name, [asdict(b) for b in blobs]) for name, blobs in info.entries]
    disk_cache.put("weights", identity, {"v1": info.v1, "input_layer": info.input_layer, "entries": entries})
    return info


def _weight_blob(d: dict[str, Any]) -> WeightBlob:
    shape_field = d["shape_field"]
    return WeightBlob(**{**d, "shape": tuple(d["shape"]),
                         "shape_field": None if shape_field is None else tuple(shape_field)})


def parse_weights(path: Path) -> WeightsInfo:
    """Parse a caffemodel into what Caffe's loader will see, refusing what would make it abort first.

    Mirrors ReadNetParamsFromBinaryFileOrDie: the read limit, the parser's required-field check, and
    UpgradeNetAsNeeded (V0 refused; V1 'layers' upgraded one for one; 'layer' and 'layers' together a
    LOG(FATAL); legacy input fields turned into a blob-less first layer named 'input'). What is left
    per layer entry, in file order, is for ``check_weights`` to compare with the net.
    """
    from google.protobuf.message import DecodeError

    pb = proto()
    data = read_input(path, "weights file", binary=True, hint="; run 'dgn-am download' or give the right path")
    assert isinstance(data, bytes)
    if len(data) > _PROTO_READ_LIMIT:
        raise InputError(f"weights file {path} is {len(data):,} bytes, more than the {_PROTO_READ_LIMIT:,} "
                         "Caffe's protobuf reader accepts")
    if _is_hdf5(data):
        raise InputError(f"weights file {path} is an HDF5 file; Caffe would load it with its HDF5 loader, "
                         "which is not supported here: give a binary .caffemodel")
    net = pb.NetParameter()
    try:
        net.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):
        raise InputError(f"weights file {path} does not parse as a caffemodel") from None
    missing = net.FindInitializationErrors()  # Python parses these; Caffe's C++ parser refuses them
    if missing:
        raise InputError(f"weights file {path} does not parse as a caffemodel for Caffe: required field "
                         f"{missing[0]} is missing")
    if any(layer.HasField("layer") for layer in net.layers):
        raise InputError(f"weights file {path} is in the pre-2014 V0 format, not supported; upgrade it "
                         "with Caffe's upgrade_net_proto_binary")
    if net.layer and net.layers:
        raise InputError(f"weights file {path} mixes 'layer' ({len(net.layer)}) and V1 'layers' "
                         f"({len(net.layers)}) entries, which Caffe refuses to upgrade")
    entries: list[tuple[str, list[WeightBlob]]] = []
    input_layer = bool(net.input_shape or net.input_dim)
    if input_layer:
        # UpgradeNetInput reads input_shape(i) (or input_dim(4i..4i+3)) for every input without a
        # bounds check: too few of them is undefined behaviour there (a segfault, seen).
        if net.input_shape and len(net.input_shape) < len(net.input):
            raise InputError(f"weights file {path} has {len(net.input)} legacy inputs but "
                             f"{len(net.input_shape)} input_shape entries (the file is damaged)")
        if not net.input_shape and len(net.input_dim) < 4 * len(net.input):
            raise InputError(f"weights file {path} has {len(net.input)} legacy inputs but "
                             f"{len(net.input_dim)} input_dim values, not 4 each (the file is damaged)")
        entries.append(("input", []))  # the Input layer UpgradeNetInput adds, swapped to the front
    for layer in net.layers or net.layer:  # 'layers': the V1 format of 2014 caffemodels
        entries.append((_layer_name(layer.name), [_blob(b) for b in layer.blobs]))
    return WeightsInfo(path=Path(path), entries=entries, v1=bool(net.layers), input_layer=input_layer)


def _blob(b: Any) -> WeightBlob:
    """What Blob::ShapeEquals and Blob::FromProto read from one BlobProto (copy_diff included)."""
    values, count = ("double_data", len(b.double_data)) if b.double_data else ("data", len(b.data))
    diff, diff_count = ("double_diff", len(b.double_diff)) if b.double_diff else ("diff", len(b.diff) or None)
    dims = tuple(b.shape.dim)
    if any(b.HasField(f) for f in ("num", "channels", "height", "width")):
        # Any legacy field that is *set* (even to its default) makes Caffe compare those four, unset ones as 0.
        return WeightBlob((b.num, b.channels, b.height, b.width), legacy=True, count=count, values=values,
                          diff_count=diff_count, diff=diff, shape_field=dims if b.HasField("shape") else None)
    return WeightBlob(dims, legacy=False, count=count, values=values, diff_count=diff_count, diff=diff)


def save_random_weights(definition: Path, path: Path, seed: int) -> Path:
    """A caffemodel of ``definition``'s architecture with He-style random weights.

    The real models cannot be downloaded everywhere; tests and benchmarks run on these instead. The
    scale keeps activations finite through the real depth (k4 s2 deconvolutions see a quarter of
    their taps per output pixel, hence the smaller fan-in).
    """
    c = caffe()
    net = c.Net(str(definition), c.TEST)
    rng = np.random.default_rng(seed)
    types = {name: layer.type for name, layer in net.layer_dict.items()}
    for name, params in net.params.items():
        w = params[0].data
        fan_in = int(np.prod(w.shape[1:])) if w.ndim > 1 else 1
        if types[name] == "Deconvolution":
            fan_in = int(w.shape[0] * np.prod(w.shape[2:])) // (4 if w.shape[2] == 4 else 1)
        w[...] = rng.standard_normal(w.shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / max(fan_in, 1)))
        for extra in params[1:]:
            extra.data[...] = rng.standard_normal(extra.data.shape, dtype=np.float32) * np.float32(0.01)
    net.save(str(path))
    return Path(path)
