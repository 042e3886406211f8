"""Plain descriptions of a net and a caffemodel, and the checks made on them before Caffe loads.

Caffe's own loading is unforgiving in both directions: a shape mismatch aborts the process, and a
caffemodel whose layer names match nothing "loads" silently, leaving filler values (FACTS §7). So
every check here runs on plain data that ``backend`` extracts, and raises ``InputError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..common.errors import InputError
from ..core.objectives import Unit


@dataclass
class NetInfo:
    """What a constructed net looks like: blob shapes, parameter shapes per layer, layer types."""

    path: Path
    blobs: dict[str, tuple[int, ...]]
    params: dict[str, list[tuple[int, ...]]]
    layers: list[tuple[str, str]] = field(default_factory=list)  # (name, type)
    inputs: list[str] = field(default_factory=list)
    tops: dict[str, list[str]] = field(default_factory=dict)  # layer name -> the blobs it writes
    bottoms: dict[str, list[str]] = field(default_factory=dict)  # layer name -> the blobs it reads
    force_backward_added: bool = False  # the prototxt lacked force_backward: true; Caffe got a copy with it


@dataclass
class WeightBlob:
    """One stored parameter blob, reduced to what Caffe's Blob::ShapeEquals and FromProto look at."""

    shape: tuple[int, ...]  # what Caffe compares: the legacy num/channels/height/width if any is set, else BlobShape
    legacy: bool  # any legacy 4-D field is set (proto2 has-bit); Caffe then ignores the BlobShape entirely
    count: int  # values Caffe copies: double_data's when it holds any, else data's
    values: str = "data"  # the field ``count`` comes from: "data" or "double_data"
    diff_count: int | None = None  # values in double_diff (when it holds any) or diff; None when neither holds any
    diff: str = "diff"  # the field ``diff_count`` comes from: "diff" or "double_diff"
    shape_field: tuple[int, ...] | None = None  # the BlobShape dims when legacy fields override them


@dataclass
class WeightsInfo:
    """A caffemodel as Caffe's loader sees it once UpgradeNetAsNeeded has run on it.

    ``entries`` keeps every layer entry in file order, duplicates and blob-less ones included: Caffe's
    CopyTrainedLayersFrom copies (and checks) each of them in turn, so a dict by name would hide the
    entry that aborts it.
    """

    path: Path
    entries: list[tuple[str, list[WeightBlob]]]  # (layer name, blobs) in the order Caffe copies them
    v1: bool = False  # stored in the 2014 V1 'layers' format, which Caffe upgrades on load
    input_layer: bool = False  # legacy input fields made Caffe prepend a blob-less layer named 'input'


def _fits(expected: tuple[int, ...], stored: WeightBlob) -> bool:
    """Caffe's Blob::ShapeEquals: legacy 4-D shapes match when padded on the left with ones.

    A target of more than 4 axes never matches a legacy shape. (Caffe truncates int64 BlobShape dims to
    int before comparing; a dim past 2**31 is refused here rather than mirrored.)
    """
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


def _shape_words(blob: WeightBlob) -> str:
    if blob.shape_field is not None:
        return (f"legacy num/channels/height/width {list(blob.shape)} (Caffe reads these, not its shape "
                f"{list(blob.shape_field)})")
    return f"{'legacy 4-D ' if blob.legacy else ''}shape {list(blob.shape)}"


def check_weights(net: NetInfo, weights: WeightsInfo) -> None:
    """What Caffe's CopyTrainedLayersFrom would abort on, and what it would silently leave unloaded.

    Caffe copies every entry of the file, in order, into the FIRST layer of the net with that name,
    whatever its type: the number of blobs must match exactly (a ReLU named like a caffemodel's
    convolution aborts it, and so does a blob-less entry named like a layer with parameters), then each
    blob's shape and value counts. Entries named like no layer are ignored, as Caffe ignores them. On
    top of that, every layer with parameters must get weights, which Caffe does not insist on.
    """
    kinds: dict[str, str] = {}  # name -> type of the first layer of that name, the one Caffe copies into
    layers_named: dict[str, int] = {}
    for name, kind in net.layers:
        kinds.setdefault(name, kind)
        layers_named[name] = layers_named.get(name, 0) + 1
    for name in net.params:  # a NetInfo made by hand may list only its parameter layers
        kinds.setdefault(name, "")
    with_params = {name: shapes for name, shapes in net.params.items() if shapes}
    for name in with_params:
        if layers_named.get(name, 0) > 1:
            # net.params holds one entry per name, so which of them Caffe fills cannot be told here
            raise InputError(f"{net.path} has {layers_named[name]} layers named '{name}'; Caffe copies weights "
                             "into the first only, so layer names must be unique")
    loaded = {name for name, blobs in weights.entries if blobs and name in with_params}
    if with_params and not loaded:
        raise InputError(
            f"{weights.path} matches no layer of {net.path} (is it the weights of another net?)"
        )
    for name in with_params:
        if name not in loaded:
            raise InputError(f"{weights.path} has no weights for layer '{name}' of {net.path}")
    total: dict[str, int] = {}
    for name, _ in weights.entries:
        total[name] = total.get(name, 0) + 1
    seen: dict[str, int] = {}
    for name, stored in weights.entries:
        if name not in kinds:
            continue  # Caffe ignores extra layers (auxiliary classifiers, losses); so do we
        seen[name] = seen.get(name, 0) + 1
        where = f"layer '{name}'" + (f" (entry {seen[name]} of {total[name]})" if total[name] > 1 else "")
        expected = net.params.get(name, [])
        if len(stored) != len(expected):
            why = ""
            if not expected:
                kind = kinds[name] or "layer"
                why = f" (its '{name}' is a {kind}, which has none; Caffe matches weights by name alone)"
            elif not stored:
                why = " (Caffe checks every entry of a name, blob-less ones too)"
            raise InputError(
                f"{weights.path}: {where} has {len(stored)} weight blobs; {net.path} expects {len(expected)}{why}"
            )
        for k, (exp, blob) in enumerate(zip(expected, stored, strict=True)):
            if not _fits(exp, blob):
                raise InputError(f"{weights.path}: {where} blob {k} has {_shape_words(blob)}; "
                                 f"{net.path} expects {list(exp)}")
            need = _count(exp)
            if blob.count != need:
                field_ = "" if blob.values == "data" else f" in {blob.values}"
                raise InputError(
                    f"{weights.path}: {where} blob {k} holds {blob.count} values{field_}; "
                    f"its shape needs {need} (the file is damaged)"
                )
            if blob.diff_count is not None and blob.diff_count != need:
                raise InputError(
                    f"{weights.path}: {where} blob {k} holds {blob.diff_count} gradient values in {blob.diff}; "
                    f"its shape needs {need} (Caffe checks them too; the file is damaged)"
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


def check_net_input(net: NetInfo, blob: str, what: str) -> None:
    """``blob`` is an input of the net (an Input layer or an ``input:`` field), where DGN-AM feeds it.

    A blob of that name made by a layer (DummyData, a data layer) would overwrite what is fed to it
    at every forward pass, so the image or code would be ignored and the result meaningless.
    """
    check_blob(net, blob, what)
    if blob not in net.inputs:
        maker = next((name for name, tops in net.tops.items() if blob in tops), "a layer")
        kind = dict(net.layers).get(maker, "")
        raise InputError(
            f"{what} '{blob}' of {net.path} is made by layer '{maker}'{f' ({kind})' if kind else ''}, not a net input, "
            f"so what dgn-am feeds it would be ignored; declare it with an Input layer"
        )


def end_layer(net: NetInfo, blob: str) -> str:
    """The layer a forward pass must end at (and the backward pass start at) to read ``blob``.

    The released code named the layer: for CaffeNet's ``conv5`` that is the convolution itself,
    before the in-place ReLU, and that convention is kept where a layer has the blob's name. A blob
    named otherwise is read after the first layer that writes it.
    """
    if blob in net.tops.get(blob, ()):
        return blob
    for name, _ in net.layers:
        if blob in net.tops.get(name, ()):
            return name
    raise InputError(f"no layer of {net.path} writes blob '{blob}'")


#: Layer types whose backward pass to their input Caffe does not implement (it aborts when asked to run it).
NO_BACKWARD = {"ArgMax", "Threshold", "Accuracy", "Embed"}


def check_backward_path(net: NetInfo, blob: str, input_blob: str) -> None:
    """Every layer between ``input_blob`` and ``blob`` can pass a gradient back, or an InputError.

    Only layers that lie on a path from the input to the blob matter; Caffe would abort on the first
    one whose backward pass it does not implement.
    """
    order = [name for name, _ in net.layers]
    stop = order.index(end_layer(net, blob)) + 1
    reaches = {input_blob}
    types = dict(net.layers)
    for name in order[:stop]:
        if reaches & set(net.bottoms.get(name, ())):
            if types.get(name) in NO_BACKWARD:
                raise InputError(f"layer '{name}' ({types[name]}) of {net.path} lies between '{input_blob}' and "
                                 f"'{blob}' and has no backward pass, so no gradient can reach the image")
            reaches |= set(net.tops.get(name, ()))
    if blob not in reaches:
        raise InputError(f"blob '{blob}' of {net.path} does not depend on the input '{input_blob}', "
                         "so no image can change it")


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


def _producers(layers: list[SpatialLayer]) -> dict[str, SpatialLayer]:
    producers: dict[str, SpatialLayer] = {}
    for layer in layers:
        for top in layer.tops:
            producers.setdefault(top, layer)  # the first producer; later in-place layers are elementwise
    return producers


def _input_span(producers: dict[str, SpatialLayer], name: str, lo: int, hi: int, axis: int,
                input_size: tuple[int, int], input_blob: str, depth: int = 0) -> tuple[int, int]:
    """The input rows (axis 0) or columns (axis 1) that units lo..hi of blob ``name`` see, unclipped.

    A unit at [lo, hi] of a layer with kernel k, stride s, pad p sees [lo*s - p, hi*s - p + k - 1]
    below it; branches that meet in a Concat are united; a whole-input layer sees everything.
    """
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
    spans = [_input_span(producers, b, lo, hi, axis, input_size, input_blob, depth + 1) for b in layer.bottoms]
    return min(a for a, _ in spans), max(b for _, b in spans)


def receptive_field(
    layers: list[SpatialLayer], blob: str, x: int, y: int, input_size: tuple[int, int], input_blob: str = "data"
) -> tuple[int, int, int, int]:
    """The input region (top, left, height, width) that unit position (x, y) of ``blob`` sees.

    Clipped to the image. For CaffeNet conv5 at (6, 6) this gives the released 163 x 163 crop at
    offset (32, 32).
    """
    producers = _producers(layers)
    top, bottom = _input_span(producers, blob, y, y, 0, input_size, input_blob)
    left, right = _input_span(producers, blob, x, x, 1, input_size, input_blob)
    top, left = max(top, 0), max(left, 0)
    bottom, right = min(bottom, input_size[0] - 1), min(right, input_size[1] - 1)
    return top, left, bottom - top + 1, right - left + 1


@dataclass(frozen=True)
class Field:
    """A blob's receptive field on the input, per axis (h, w), before clipping to the image.

    ``size``: the window one unit sees; ``stride``: how far the windows of neighbouring units lie
    apart; ``offset``: where unit 0's window starts (negative where it reaches into the padding).
    ``whole``: each unit sees the whole input (after an InnerProduct or a global pooling).
    """

    size: tuple[int, int]
    stride: tuple[int, int]
    offset: tuple[int, int]
    whole: bool = False


def field_of(layers: list[SpatialLayer], blob: str, input_size: tuple[int, int], input_blob: str = "data") -> Field:
    """``blob``'s receptive field, from the windows of its units 0 and 1 along each axis."""
    producers = _producers(layers)
    first = [_input_span(producers, blob, 0, 0, axis, input_size, input_blob) for axis in (0, 1)]
    second = [_input_span(producers, blob, 1, 1, axis, input_size, input_blob) for axis in (0, 1)]
    if first == second:
        return Field((input_size[0], input_size[1]), (0, 0), (0, 0), whole=True)
    return Field(size=(first[0][1] - first[0][0] + 1, first[1][1] - first[1][0] + 1),
                 stride=(second[0][0] - first[0][0], second[1][0] - first[1][0]),
                 offset=(first[0][0], first[1][0]))
