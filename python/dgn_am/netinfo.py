"""Plain descriptions of a net and a caffemodel, and the checks made on them before Caffe loads.

Caffe's own loading is unforgiving in both directions: a shape mismatch aborts the process, and a
caffemodel whose layer names match nothing "loads" silently, leaving filler values (FACTS §7). So
every check here runs on plain data that ``caffe_backend`` extracts, and raises ``InputError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError
from .objectives import Unit


@dataclass
class NetInfo:
    """What a constructed net looks like: blob shapes, parameter shapes per layer, layer types."""

    path: Path
    blobs: dict[str, tuple[int, ...]]
    params: dict[str, list[tuple[int, ...]]]
    layers: list[tuple[str, str]] = field(default_factory=list)  # (name, type)
    inputs: list[str] = field(default_factory=list)


@dataclass
class WeightBlob:
    shape: tuple[int, ...]  # as stored: BlobShape dims, or the legacy num/channels/height/width
    legacy: bool  # stored with the legacy 4-D fields
    count: int  # number of values actually stored


@dataclass
class WeightsInfo:
    path: Path
    layers: dict[str, list[WeightBlob]]


def _fits(expected: tuple[int, ...], stored: WeightBlob) -> bool:
    """Caffe's Blob::ShapeEquals: legacy 4-D shapes match when padded on the left with ones."""
    if stored.legacy:
        if len(expected) > 4:
            return False
        return tuple([1] * (4 - len(expected)) + list(expected)) == stored.shape
    return tuple(expected) == stored.shape


def _count(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def check_weights(net: NetInfo, weights: WeightsInfo) -> None:
    """Every layer with parameters gets weights of the right number and shapes; nothing is left out."""
    with_params = {name: shapes for name, shapes in net.params.items() if shapes}
    shared = [name for name in weights.layers if name in with_params]
    if with_params and not shared:
        raise InputError(
            f"{weights.path} matches no layer of {net.path} (is it the weights of another net?)"
        )
    for name in with_params:
        if name not in weights.layers:
            raise InputError(f"{weights.path} has no weights for layer '{name}' of {net.path}")
    for name, stored in weights.layers.items():
        if name not in net.params:
            continue  # Caffe ignores extra layers (auxiliary classifiers, losses); so do we
        expected = net.params[name]
        if len(stored) != len(expected):
            raise InputError(
                f"{weights.path}: layer '{name}' has {len(stored)} weight blobs; {net.path} expects {len(expected)}"
            )
        for k, (exp, blob) in enumerate(zip(expected, stored, strict=True)):
            if not _fits(exp, blob):
                raise InputError(
                    f"{weights.path}: layer '{name}' blob {k} has shape {list(blob.shape)}; "
                    f"{net.path} expects {list(exp)}"
                )
            if blob.count != _count(exp):
                raise InputError(
                    f"{weights.path}: layer '{name}' blob {k} holds {blob.count} values; "
                    f"its shape needs {_count(exp)} (the file is damaged)"
                )


def check_blob(net: NetInfo, blob: str, what: str) -> tuple[int, ...]:
    """The shape of a named blob, or an InputError naming the blobs there are."""
    if blob not in net.blobs:
        names = ", ".join(net.blobs)
        raise InputError(f"{what} '{blob}' is not a blob of {net.path} (it has: {names})")
    return net.blobs[blob]


def check_unit(net: NetInfo, layer: str, unit: Unit) -> None:
    """The unit (and for conv blobs the x/y position) exists in ``layer``."""
    shape = check_blob(net, layer, "--act_layer")
    if len(shape) == 4:
        channels, height, width = shape[1:]
        if not 0 <= unit.unit < channels:
            raise InputError(
                f"--unit {unit.unit} is out of range for '{layer}' ({channels} channels: 0..{channels - 1})"
            )
        if not (0 <= unit.x < width and 0 <= unit.y < height):
            raise InputError(
                f"position x={unit.x}, y={unit.y} is outside '{layer}' ({width}x{height}: 0..{width - 1})"
            )
    else:
        per_sample = _count(shape[1:])
        if not 0 <= unit.unit < per_sample:
            raise InputError(
                f"--unit {unit.unit} is out of range for '{layer}' ({per_sample} units: 0..{per_sample - 1})"
            )


def check_generator(net: NetInfo, code_blob: str, image_blob: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The generator has a code input and a 4-D, 3-channel image output; returns both shapes."""
    code = check_blob(net, code_blob, "generator input")
    image = check_blob(net, image_blob, "generator output")
    if len(image) != 4 or image[1] != 3:
        raise InputError(f"generator output '{image_blob}' of {net.path} is {list(image)}, not N x 3 x H x W")
    return code, image


def image_input_size(net: NetInfo) -> tuple[int, int]:
    """The (h, w) of the net's 'data' input, which must be N x 3 x H x W images."""
    data = check_blob(net, "data", "image input")
    if len(data) != 4 or data[1] != 3:
        raise InputError(f"input 'data' of {net.path} is {list(data)}, not N x 3 x H x W")
    return data[2], data[3]


def check_target_input(net: NetInfo, image_shape: tuple[int, ...]) -> tuple[int, int]:
    """The target net takes 3-channel images no larger than the generator makes; returns (h, w)."""
    data = (1, 3, *image_input_size(net))
    if data[2] > image_shape[2] or data[3] > image_shape[3]:
        raise InputError(
            f"{net.path} takes {data[2]}x{data[3]} images but the generator makes {image_shape[2]}x{image_shape[3]}"
        )
    return data[2], data[3]


@dataclass(frozen=True)
class SpatialLayer:
    """A layer as far as image geometry goes: which blobs it joins and its window per axis (h, w)."""

    name: str
    type: str
    bottoms: tuple[str, ...]
    tops: tuple[str, ...]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int] = (0, 0)
    whole: bool = False  # sees the whole input (InnerProduct, global pooling)


_WINDOWED = {"Convolution", "Pooling"}
_UNSUPPORTED = {"Deconvolution", "Crop", "Reshape", "Flatten"}


def receptive_field(
    layers: list[SpatialLayer], blob: str, x: int, y: int, input_size: tuple[int, int], input_blob: str = "data"
) -> tuple[int, int, int, int]:
    """The input region (top, left, height, width) that unit position (x, y) of ``blob`` sees.

    Walks from ``blob`` back to the input through every window (a unit at [lo, hi] of a layer with
    kernel k, stride s, pad p sees [lo*s - p, hi*s - p + k - 1] below it); branches that meet in a
    Concat are united. Clipped to the image. For CaffeNet conv5 at (6, 6) this gives the released
    163 x 163 crop at offset (32, 32).
    """
    producers: dict[str, SpatialLayer] = {}
    for layer in layers:
        for top in layer.tops:
            producers.setdefault(top, layer)  # the first producer; later in-place layers are elementwise

    def back(name: str, lo: int, hi: int, axis: int, depth: int = 0) -> tuple[int, int]:
        if name == input_blob:
            return lo, hi
        if depth > 1000 or name not in producers:
            raise InputError(f"cannot trace blob '{name}' back to the input '{input_blob}'")
        layer = producers[name]
        if layer.type in _UNSUPPORTED:
            raise InputError(f"receptive fields through a {layer.type} layer ('{layer.name}') are not supported")
        if layer.whole:
            return 0, input_size[axis] - 1
        if layer.type in _WINDOWED:
            k, s, p = layer.kernel[axis], layer.stride[axis], layer.pad[axis]
            lo, hi = lo * s - p, hi * s - p + k - 1
        spans = [back(b, lo, hi, axis, depth + 1) for b in layer.bottoms]
        return min(a for a, _ in spans), max(b for _, b in spans)

    top, bottom = back(blob, y, y, 0)
    left, right = back(blob, x, x, 1)
    top, left = max(top, 0), max(left, 0)
    bottom, right = min(bottom, input_size[0] - 1), min(right, input_size[1] - 1)
    return top, left, bottom - top + 1, right - left + 1
