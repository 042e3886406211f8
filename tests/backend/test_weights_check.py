"""The caffemodel check against what Caffe's Net::CopyTrainedLayersFrom really does.

Every case is a caffemodel built here by hand for a tiny net (Input 1x3x8x8, Convolution 'conv1' 4 k3,
ReLU, InnerProduct 'fc' 5), and is judged twice: by ``check_weights(probe(prototxt), read_weights(file))``
and by real Caffe in a child process, where an abort cannot take pytest with it. Whatever our check
passes, Caffe must load (every parameter filled); every case marked ``dies`` must really kill Caffe, so
that each refusal stands for a real abort. Cases refused for the project's own reasons (weights that match
nothing, a layer left without weights) load in Caffe; for those the check is stricter on purpose.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from caffe.proto import caffe_pb2 as pb

from dgn_am import backend as cb
from dgn_am.backend.netinfo import check_weights
from dgn_am.common.errors import InputError

# The main net; 'relu_named' gives its ReLU the name the caffemodels use for a convolution, and
# 'input_named' calls its convolution 'input', the name of the layer Caffe makes from legacy input fields.
PROTOTXTS = {
    "main": """
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "fc" type: "InnerProduct" bottom: "conv1" top: "fc" inner_product_param { num_output: 5 } }
""",
    "relu_named": """
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "conv1" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc" inner_product_param { num_output: 5 } }
""",
    "input_named": """
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "input" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "fc" type: "InnerProduct" bottom: "c" top: "fc" inner_product_param { num_output: 5 } }
""",
}

CONV = [(4, 3, 3, 3), (4,)]
FC = [(5, 144), (5,)]
LEGACY = ("num", "channels", "height", "width")


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def blob(shape: tuple[int, ...] | None, *, legacy: tuple[int, ...] | dict[str, int] | None = None,
         n: int | None = None, double: int | None = None, diff: int | None = None,
         double_diff: int | None = None) -> pb.BlobProto:
    """A BlobProto: ``shape`` as BlobShape (None: no shape field), ``legacy`` as num/channels/height/width
    (a dict sets only the fields it names), ``n`` float values (default: the shape's count), ``double``
    double_data values, ``diff``/``double_diff`` gradient values. Values are non-zero, unlike Caffe's
    default filler, so a child can tell loaded parameters from unloaded ones."""
    b = pb.BlobProto()
    if shape is not None:
        b.shape.dim.extend(shape)
    fields = dict(zip(LEGACY, legacy, strict=True)) if isinstance(legacy, tuple) else (legacy or {})
    for name, value in fields.items():
        setattr(b, name, value)
    count = _prod(shape if shape is not None else tuple(fields.get(f, 0) for f in LEGACY))
    b.data.extend([0.5] * (count if n is None else n))
    if double is not None:
        b.double_data.extend([0.25] * double)
    if diff is not None:
        b.diff.extend([0.125] * diff)
    if double_diff is not None:
        b.double_diff.extend([0.125] * double_diff)
    return b


def blobs(shapes: list[tuple[int, ...]]) -> list[pb.BlobProto]:
    return [blob(s) for s in shapes]


def legacy_blobs(shapes: list[tuple[int, ...]]) -> list[pb.BlobProto]:
    """As 2014 caffemodels stored them: only the legacy 4-D fields, padded on the left with ones."""
    return [blob(None, legacy=(1,) * (4 - len(s)) + s) for s in shapes]


def net(*entries: tuple[str, list[pb.BlobProto]], v1: bool = False) -> pb.NetParameter:
    """A caffemodel with one 'layer' (or V1 'layers') entry per (name, blobs), in that order."""
    m = pb.NetParameter(name="tiny")
    for name, bs in entries:
        # Caffe copies by name alone; the type is stored only to look like a real file
        kind = "InnerProduct" if name.startswith("fc") else "Convolution" if bs else "ReLU"
        if v1:
            v1_kind = {"InnerProduct": "INNER_PRODUCT", "Convolution": "CONVOLUTION", "ReLU": "RELU"}[kind]
            layer = m.layers.add(name=name, type=pb.V1LayerParameter.LayerType.Value(v1_kind))
        else:
            layer = m.layer.add(name=name, type=kind)
        layer.blobs.extend(bs)
    return m


def good(**replace: list[pb.BlobProto]) -> pb.NetParameter:
    """The main net's caffemodel as Caffe saves it (blob-less entries for data and relu1 included)."""
    parts = {"data": [], "conv1": blobs(CONV), "relu1": [], "fc": blobs(FC)}
    parts.update(replace)
    return net(*parts.items())


def with_inputs(m: pb.NetParameter, *, inputs: int = 1, dims: int | None = None,
                shapes: int | None = None) -> pb.NetParameter:
    """Legacy 'input' fields, as old deploy nets carried them: ``dims`` input_dim values or ``shapes`` input_shapes."""
    m.input.extend(f"in{i}" for i in range(inputs))
    if shapes is not None:
        for _ in range(shapes):
            m.input_shape.add().dim.extend([1, 3, 8, 8])
    else:
        m.input_dim.extend([1, 3, 8, 8] * inputs if dims is None else [1] * dims)
    return m


def v0() -> pb.NetParameter:
    m = good()
    layer = m.layers.add()
    layer.layer.name, layer.layer.type = "conv0", "conv"
    del m.layer[:]
    return m


def mixed() -> pb.NetParameter:
    m = good()
    m.layers.add(name="extra", type=pb.V1LayerParameter.RELU)
    return m


def clip_without_max() -> pb.NetParameter:
    m = good()
    m.layer.add(name="clip", type="Clip").clip_param.min = 0.0  # ClipParameter.max is 'required'
    return m


def bad_utf8_name() -> bytes:
    # A layer named b"\xff": Caffe's parser takes it (proto2 strings are not checked) and matches nothing.
    inner = b"\x0a\x01\xff"
    return good().SerializeToString() + bytes([0xA2, 0x06, len(inner)]) + inner  # field 100, LEN


HDF5 = b"\x89HDF\r\n\x1a\n"


@dataclass
class Case:
    prototxt: str
    weights: Callable[[], pb.NetParameter | bytes]
    refusal: str | None = None  # regex of our one-line refusal; None: the check passes
    dies: bool = False  # real Caffe aborts (or crashes) on it
    suffix: str = ".caffemodel"


CASES: dict[str, Case] = {
    # --- what Caffe loads, and so must we
    "good": Case("main", good),
    "legacy_only": Case("main", lambda: good(conv1=legacy_blobs(CONV), fc=legacy_blobs(FC))),
    "legacy_agrees_with_shape": Case("main", lambda: good(fc=[blob((5, 144), legacy=(1, 1, 5, 144)),
                                                              blob((5,), legacy=(1, 1, 1, 5))])),
    "double_data": Case("main", lambda: good(conv1=[blob((4, 3, 3, 3), n=0, double=108), blob((4,), n=0, double=4)])),
    # double_data wins whenever it holds anything, so a wrong count in data does not matter then
    "double_data_over_bad_data": Case("main", lambda: good(conv1=[blob((4, 3, 3, 3), n=7, double=108),
                                                                  blob((4,))])),
    "diff_of_right_count": Case("main", lambda: good(fc=[blob((5, 144), diff=720), blob((5,), double_diff=5)])),
    "v1_legacy": Case("main", lambda: net(("conv1", legacy_blobs(CONV)), ("relu1", []), ("fc", legacy_blobs(FC)),
                                          v1=True)),
    "v1_with_input_fields": Case("main", lambda: with_inputs(net(("conv1", blobs(CONV)), ("fc", blobs(FC)), v1=True))),
    "input_fields": Case("main", lambda: with_inputs(good())),
    "extra_layers_ignored": Case("main", lambda: net(("loss3/classifier", blobs([(9, 9)])), ("conv1", blobs(CONV)),
                                                     ("fc", blobs(FC)), ("prob", [blob((1,))]))),
    "bad_utf8_name_ignored": Case("main", bad_utf8_name),
    "duplicates_both_right": Case("main", lambda: net(("conv1", blobs(CONV)), ("fc", blobs(FC)),
                                                      ("conv1", legacy_blobs(CONV)))),
    # Caffe picks its HDF5 loader by content, not by name: a binary caffemodel called .h5 loads
    "h5_name_binary_content": Case("main", good, suffix=".h5"),
    # --- what aborts Caffe although the check before this one passed it (each fails on that code)
    "duplicate_first_wrong": Case("main", lambda: net(("conv1", blobs([(8, 3, 3, 3), (8,)])), ("conv1", blobs(CONV)),
                                                      ("fc", blobs(FC))),
                                  r"layer 'conv1' \(entry 1 of 2\) blob 0 has shape \[8, 3, 3, 3\].*expects "
                                  r"\[4, 3, 3, 3\]", dies=True),
    "legacy_contradicts_shape": Case("main", lambda: good(fc=[blob((5, 144)), blob((5,), legacy=(1, 1, 1, 7))]),
                                     r"layer 'fc' blob 1 has legacy num/channels/height/width \[1, 1, 1, 7\] "
                                     r"\(Caffe reads these, not its shape \[5\]\).*expects \[5\]", dies=True),
    "legacy_partly_set": Case("main", lambda: good(fc=[blob((5, 144)), blob((5,), legacy={"width": 5})]),
                              r"layer 'fc' blob 1 has legacy num/channels/height/width \[0, 0, 0, 5\]", dies=True),
    "layer_and_v1_layers_mixed": Case("main", mixed, r"mixes 'layer' \(4\) and V1 'layers' \(1\) entries", dies=True),
    "double_data_wrong_count": Case("main", lambda: good(conv1=[blob((4, 3, 3, 3), double=100), blob((4,))]),
                                    r"layer 'conv1' blob 0 holds 100 values in double_data; its shape needs 108",
                                    dies=True),
    "diff_wrong_count": Case("main", lambda: good(fc=[blob((5, 144)), blob((5,), diff=3)]),
                             r"layer 'fc' blob 1 holds 3 gradient values in diff; its shape needs 5", dies=True),
    "double_diff_wrong_count": Case("main", lambda: good(fc=[blob((5, 144), diff=720, double_diff=2), blob((5,))]),
                                    r"layer 'fc' blob 0 holds 2 gradient values in double_diff", dies=True),
    "weights_into_a_relu": Case("relu_named", lambda: net(("conv", blobs(CONV)), ("conv1", blobs(CONV)),
                                                          ("fc", blobs(FC))),
                                r"layer 'conv1' has 2 weight blobs; \S+ expects 0 \(its 'conv1' is a ReLU", dies=True),
    "blobless_entry_for_param_layer": Case("main", lambda: net(("conv1", blobs(CONV)), ("fc", blobs(FC)),
                                                               ("conv1", [])),
                                           r"layer 'conv1' \(entry 2 of 2\) has 0 weight blobs; \S+ expects 2",
                                           dies=True),
    "input_fields_make_layer_input": Case("input_named",
                                          lambda: with_inputs(net(("input", blobs(CONV)), ("fc", blobs(FC)))),
                                          r"layer 'input' \(entry 1 of 2\) has 0 weight blobs", dies=True),
    # --- what the check before this one already refused, and Caffe aborts on
    "wrong_shape": Case("main", lambda: good(fc=blobs([(5, 100), (5,)])),
                        r"layer 'fc' blob 0 has shape \[5, 100\]; \S+ expects \[5, 144\]", dies=True),
    "wrong_blob_count": Case("main", lambda: good(conv1=blobs(CONV[:1])),
                             r"layer 'conv1' has 1 weight blobs; \S+ expects 2", dies=True),
    "data_wrong_count": Case("main", lambda: good(conv1=[blob((4, 3, 3, 3), n=107), blob((4,))]),
                             r"blob 0 holds 107 values; its shape needs 108 \(the file is damaged\)", dies=True),
    # --- what Caffe's reader and upgrade path abort on before any layer is copied
    "required_field_missing": Case("main", clip_without_max, r"required field layer\[4\]\.clip_param\.max is missing",
                                   dies=True),
    "hdf5_signature": Case("main", lambda: HDF5 + bytes(100), "is an HDF5 file", dies=True),
    "hdf5_signature_after_user_block": Case("main", lambda: bytes(512) + HDF5 + bytes(100), "is an HDF5 file",
                                            dies=True),
    # --- refused for our own reasons or for undefined behaviour in Caffe; no claim on what Caffe does
    "v0_format": Case("main", v0, r"pre-2014 V0 format, not supported"),
    "too_few_input_shapes": Case("main", lambda: with_inputs(good(), inputs=2, shapes=1),
                                 r"2 legacy inputs but 1 input_shape entries"),
    "too_few_input_dims": Case("main", lambda: with_inputs(good(), inputs=2, dims=5),
                               r"2 legacy inputs but 5 input_dim values"),
    "matches_nothing": Case("main", lambda: net(("fc6", blobs(FC)), ("conv9", blobs(CONV))), "matches no layer of"),
    "layer_left_without_weights": Case("main", lambda: net(("conv1", blobs(CONV)), ("relu1", [])),
                                       r"has no weights for layer 'fc'"),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Every case written out: (prototxt, caffemodel)."""
    d = tmp_path_factory.mktemp("weights_check")
    protos = {}
    for key, text in PROTOTXTS.items():
        protos[key] = d / f"{key}.prototxt"
        protos[key].write_text(f'name: "{key}"\n{text}')
    out = {}
    for name, case in CASES.items():
        made = case.weights()
        path = d / f"{name}{case.suffix}"
        path.write_bytes(made if isinstance(made, bytes) else made.SerializePartialToString())
        out[name] = (protos[case.prototxt], path)
    return out


def _verdict(prototxt: Path, weights: Path) -> str | None:
    """None when the check passes, else its message."""
    try:
        check_weights(cb.probe(prototxt), cb.read_weights(weights))
    except InputError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("name", list(CASES))
def test_check(files, name):
    case = CASES[name]
    prototxt, weights = files[name]
    verdict = _verdict(prototxt, weights)
    if case.refusal is None:
        assert verdict is None, verdict
    else:
        assert verdict is not None, f"{name}: the check passed it"
        assert "\n" not in verdict and str(weights) in verdict, verdict  # one line, naming the file
        assert re.search(case.refusal, verdict), verdict


def _caffe(code: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, GLOG_minloglevel="2")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


LOAD = "import caffe, sys; caffe.Net(sys.argv[1], caffe.TEST, weights=sys.argv[2])"
# Loads each (prototxt, weights) pair in turn and says which one, so an abort names its case.
LOAD_ALL = """
import sys, caffe
args = sys.argv[1:]
for name, p, w in zip(args[0::3], args[1::3], args[2::3]):
    print(name, flush=True)
    net = caffe.Net(p, caffe.TEST, weights=w)
    unloaded = [k for k, bs in net.params.items() for b in bs if not b.data.any()]
    assert not unloaded, (name, unloaded)  # all zeros: Caffe's default filler, so never copied
print("done")
"""


def test_caffe_loads_whatever_the_check_passes(files):
    passed = [name for name in CASES if _verdict(*files[name]) is None]
    assert passed == [name for name, case in CASES.items() if case.refusal is None]
    proc = _caffe(LOAD_ALL, *[str(x) for name in passed for x in (name, *files[name])])
    last = proc.stdout.split()[-1:] or ["(none)"]
    assert proc.returncode == 0 and last == ["done"], f"Caffe died on {last[0]}: {proc.stderr[-2000:]}"


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.dies])
def test_each_refused_abort_is_real(files, name):
    proc = _caffe(LOAD, *[str(p) for p in files[name]])
    assert proc.returncode < 0, f"{name}: Caffe exited {proc.returncode}, not by a signal: {proc.stderr[-2000:]}"


def test_larger_than_caffes_read_limit(tmp_path):
    big = tmp_path / "big.caffemodel"
    with open(big, "wb") as f:
        f.truncate(1 << 31)  # sparse: one byte past INT_MAX, which Caffe's CodedInputStream refuses
    with pytest.raises(InputError, match="2,147,483,648 bytes, more than the 2,147,483,647"):
        cb.read_weights(big)


def test_weights_info_is_plain_data(files):
    w = cb.read_weights(files["v1_with_input_fields"][1])
    assert w.v1 and w.input_layer
    assert [(name, [b.shape for b in bs]) for name, bs in w.entries] == [
        ("input", []), ("conv1", CONV), ("fc", FC),
    ]
    w = cb.read_weights(files["legacy_contradicts_shape"][1])
    fc_bias = dict(w.entries)["fc"][1]
    assert fc_bias.legacy and fc_bias.shape == (1, 1, 1, 7) and fc_bias.shape_field == (5,)
    w = cb.read_weights(files["double_data_over_bad_data"][1])
    conv_w = dict(w.entries)["conv1"][0]
    assert (conv_w.count, conv_w.values, conv_w.diff_count) == (108, "double_data", None)
