"""The boundary with Caffe: the only module that imports it.

Caffe aborts the whole process on a failed CHECK, and its weight loading ignores layers it cannot
match. So nothing a user gives reaches Caffe unchecked: a net definition is parsed here first, then
built once in a child process (``probe``), whose death is turned into one line; a caffemodel is parsed
and compared against the probed net (``netinfo.check_weights``) before ``caffe.Net`` sees it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from . import cache as disk_cache
from .errors import InputError, read_input
from .hashing import hash_file
from .netinfo import NetInfo, SpatialLayer, WeightBlob, WeightsInfo, check_weights
from .objectives import Objective

os.environ.setdefault("GLOG_minloglevel", "2")  # Caffe's INFO/WARNING chatter; must precede the import
# Caffe's OpenMP loops (caffe-patches/0004): idle OpenMP threads must sleep, not spin against OpenBLAS's
# threads (spinning made iterations 1.5-1.7x slower on 2 cores). libgomp reads this when Caffe loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@cache
def caffe() -> Any:
    """The pycaffe module, imported once, or a one-line error saying how to get it."""
    try:
        import caffe as _caffe
    except ImportError as exc:
        raise InputError(f"pycaffe is not importable ({exc}); run scripts/setup.sh to build Caffe") from None
    return _caffe


@cache
def build_info() -> dict[str, Any]:
    """The build record that scripts/install_caffe.sh writes beside pycaffe (flags, CUDA, cuDNN)."""
    prefix = Path(caffe().__file__).resolve().parents[2]
    try:
        return json.loads((prefix / "build.json").read_text())
    except (OSError, ValueError):
        return {"cuda": False, "cudnn": False, "caffe_commit": "unknown"}


def _proto() -> Any:
    from caffe.proto import caffe_pb2  # noqa: PLC0415 - only after caffe() set up logging

    caffe()
    return caffe_pb2


# --- net definitions --------------------------------------------------------------------------

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
    net = _proto().NetParameter()
    net.CopyFrom(parsed)
    return net


@cache
def _parse_definition(path: Path, identity: str | None) -> Any:
    from google.protobuf import text_format

    pb = _proto()
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


#: How long building a net in the probe may take before it is called hung.
PROBE_TIMEOUT = 600


def probe(path: Path, backward: bool = False) -> NetInfo:
    """Build the net once in a child process and describe it; a Caffe abort there becomes one line."""
    return _probe(prepare_definition(path, backward))


def _probe(definition: Definition) -> NetInfo:
    st = definition.built.stat()
    info = _probe_built(str(definition.built.resolve()), st.st_size, st.st_mtime_ns)
    if isinstance(info, str):
        raise InputError(f"Caffe rejected net definition {definition.path}: {info}")
    return replace(info, path=definition.path, force_backward_added=definition.force_backward_added)


@cache
def _probe_built(built: str, size: int, mtime_ns: int) -> NetInfo | str:
    """The built net's description, or Caffe's reason for refusing it (remembered per file version).

    A net Caffe built is remembered across processes too, by the definition's bytes and the Caffe
    build: the same text always makes the same net there, and the probe child costs 0.7-1.3 s.
    """
    info = build_info()
    key = f"{hash_file(built)}|{info.get('caffe_commit')}|{info.get('key')}"
    d = disk_cache.get("probe", key)
    if not isinstance(d, dict):
        env = dict(os.environ, GLOG_minloglevel="2")
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "dgn_am.caffe_backend", "--probe", built],
                capture_output=True, text=True, env=env, check=False, timeout=PROBE_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            return f"building it took over {PROBE_TIMEOUT} s"
        try:
            if proc.returncode != 0:
                raise ValueError
            d = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return _caffe_reason(proc.stderr)
        disk_cache.put("probe", key, d)
    return NetInfo(
        path=Path(built),
        blobs={k: tuple(v) for k, v in d["blobs"].items()},
        params={k: [tuple(s) for s in v] for k, v in d["params"].items()},
        layers=[tuple(x) for x in d["layers"]],
        inputs=d["inputs"],
        tops={k: list(v) for k, v in d["tops"].items()},
        bottoms={k: list(v) for k, v in d["bottoms"].items()},
    )


_GLOG = re.compile(r"^([FE])\d{4,8} [\d:.]+\s+\d+ [^\]]*\] (.*)$")  # glog: F1202 or F20261202


def _caffe_reason(stderr: str) -> str:
    """The line that says why Caffe died: its FATAL (or failed CHECK) message, never the stack trace."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    fatal = [m for m in (_GLOG.match(ln) for ln in lines) if m]
    for m in sorted(fatal, key=lambda m: m.group(1) != "F"):  # a FATAL line first, then errors
        if m.group(2).strip():
            return m.group(2).strip()
    for ln in lines:
        if "Check failed" in ln or "Unknown" in ln or "Error" in ln:
            return ln.split("] ", 1)[-1]
    useful = [ln for ln in lines if not ln.startswith(("@", "***")) and "stack trace" not in ln]
    return useful[-1] if useful else "the process died without a message"


def _describe_built(path: str) -> dict[str, Any]:
    c = caffe()
    net = c.Net(path, c.TEST)
    return {
        "blobs": {k: list(v.data.shape) for k, v in net.blobs.items()},
        "params": {k: [list(p.data.shape) for p in v] for k, v in net.params.items()},
        "layers": [[name, layer.type] for name, layer in net.layer_dict.items()],
        "inputs": list(net.inputs),
        "tops": {name: list(tops) for name, tops in net.top_names.items()},
        "bottoms": {name: list(bottoms) for name, bottoms in net.bottom_names.items()},
    }


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


# --- caffemodels ------------------------------------------------------------------------------


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

    pb = _proto()
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


# --- loading ----------------------------------------------------------------------------------


#: The environment switch of scripts/caffe-patches/0003: "1" lets Caffe's CPU InnerProduct use a
#: matrix-vector product for one row, 2.4-4x faster there but rounded differently from stock Caffe.
FAST_MATH_ENV = "DGN_AM_CAFFE_FAST"


def fast_math() -> bool:
    """Whether this process runs Caffe's opt-in faster CPU arithmetic (recorded in every manifest)."""
    return os.environ.get(FAST_MATH_ENV) == "1"


#: The environment switch of scripts/caffe-patches/0007: "1" sends a CPU Convolution or Deconvolution
#: with more than one sample through oneDNN's direct kernels (1.3-3x faster there, by CPU; other rounding).
BATCHED_CONVOLUTION_ENV = "DGN_AM_CAFFE_DNNL"


def dnnl_built() -> bool:
    """Whether this Caffe was built with patch 0007's oneDNN convolutions (scripts/install_caffe.sh does)."""
    return "-DUSE_DNNL=ON" in build_info().get("cmake_flags", [])


@contextlib.contextmanager
def batched_convolution(size: int, gpu: bool = False) -> Iterator[str]:
    """Run the block's batches of ``size`` > 1 on oneDNN's convolutions; yields which ones ran.

    Batching already changes the rounding, and the faster convolutions that patch 0007 makes
    possible are why one batches on a CPU, so they come with it: "oneDNN". Their other summation
    order (about 1e-6 relative per layer) can also flip a max-pooling window whose two largest
    inputs are that close, which moves that window's gradient to another pixel: README, batches.
    A batch of one, a build without oneDNN, ``DGN_AM_CAFFE_DNNL=0`` or ``DGN_AM_CAFFE_STOCK=1``
    keep Caffe's own: "caffe" (on a GPU, "gpu": the switch is CPU code). Caffe reads the switch at
    every layer call, so setting it here is enough.
    """
    user = os.environ.get(BATCHED_CONVOLUTION_ENV)
    on = (not gpu and size > 1 and dnnl_built() and user != "0" and os.environ.get("DGN_AM_CAFFE_STOCK") != "1")
    os.environ[BATCHED_CONVOLUTION_ENV] = "1" if on else "0"
    try:
        yield "gpu" if gpu else "oneDNN" if on else "caffe"
    finally:
        if user is None:
            del os.environ[BATCHED_CONVOLUTION_ENV]
        else:
            os.environ[BATCHED_CONVOLUTION_ENV] = user


def set_mode(gpu: int | None) -> str:
    """CPU, or GPU ``gpu`` after checking, in a child process, that this build and device can run it."""
    c = caffe()
    if gpu is None:
        c.set_mode_cpu()
        return f"CPU: {_cpu_name()}"
    if not build_info().get("cuda"):
        raise InputError(
            f"--gpu {gpu}: this Caffe was built CPU-only; rebuild it with scripts/install_caffe.sh --cuda"
        )
    proc = subprocess.run(
        [sys.executable, "-m", "dgn_am.caffe_backend", "--gpu-check", str(gpu)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise InputError(f"--gpu {gpu}: no usable CUDA device ({_caffe_reason(proc.stderr)})")
    c.set_device(gpu)
    c.set_mode_gpu()
    return f"GPU {gpu}: {_gpu_name(gpu)}"


def _cpu_name() -> str:
    """The processor's model name, for the run manifest (results can differ across BLAS kernels)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown"


def _gpu_name(gpu: int) -> str:
    """The CUDA device's name as the driver reports it (pycaffe has no call for it)."""
    try:
        proc = subprocess.run(["nvidia-smi", f"--id={gpu}", "--query-gpu=name", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown device"
    return proc.stdout.strip() or "unknown device"


def check_model(definition: Path, weights: Path, backward: bool = False) -> NetInfo:
    """The net's description once its definition and caffemodel are known to be safe for Caffe to load."""
    info = probe(definition, backward)
    check_weights(info, read_weights(weights))
    return info


def load_net(definition: Path, weights: Path, backward: bool = False) -> tuple[Any, NetInfo]:
    """A checked ``caffe.Net`` in TEST phase with its weights, and its description.

    ``backward``: the net must pass gradients back to its input (the target and the generator), so a
    definition without ``force_backward: true`` is loaded from a copy that sets it. Weights holding
    NaN or Inf are refused: every result computed from them would be NaN.
    """
    prepared = prepare_definition(definition, backward)
    info = _probe(prepared)
    check_weights(info, read_weights(weights))
    c = caffe()
    net = c.Net(str(prepared.built), c.TEST, weights=str(weights))
    for name, blobs in net.params.items():
        for k, blob in enumerate(blobs):
            if not np.isfinite(blob.data).all():
                raise InputError(f"weights file {weights}: layer '{name}' blob {k} holds NaN or Inf values "
                                 "(the file is damaged or the training diverged)")
    if backward:
        set_weight_gradients(net, False)
    return net, info


def set_weight_gradients(net: Any, on: bool) -> bool:
    """Whether ``net``'s backward computes weight gradients; False where this pycaffe cannot set it.

    ``force_backward: true`` makes Caffe compute the gradient of every weight on every backward,
    whatever ``lr_mult`` says, and DGN-AM only ever reads the gradient with respect to the input.
    The input gradients do not depend on the weight gradients, so turning them off changes no bit
    of a result; it saves a third to a half of each backward (patch 0005 adds the pycaffe call).
    """
    layers = list(net.layers)
    if not all(hasattr(layer, "set_param_propagate_down") for layer in layers):
        return False
    for layer in layers:
        for k in range(len(layer.blobs)):
            layer.set_param_propagate_down(k, on)
    return True


def imagenet_mean() -> np.ndarray:
    """The ImageNet mean image that ships in Caffe's source (3 x 256 x 256, BGR)."""
    return np.load(Path(caffe().__file__).parent / "imagenet" / "ilsvrc_2012_mean.npy")


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


# --- the nets as the algorithm sees them -----------------------------------------------------


class CaffeGenerator:
    """A generator net: code blob in, image blob out, and the gradient from the image to the code."""

    def __init__(self, net: Any, code_blob: str = "feat", image_blob: str = "deconv0") -> None:
        self.net, self.code_blob, self.image_blob = net, code_blob, image_blob
        self._backward_start = self._last_layer(image_blob)
        self._reshape(1)

    def _reshape(self, batch: int) -> None:
        blob = self.net.blobs[self.code_blob]
        if blob.data.shape[0] != batch:
            blob.reshape(batch, *blob.data.shape[1:])
            self.net.reshape()

    @property
    def code_size(self) -> int:
        return int(np.prod(self.net.blobs[self.code_blob].data.shape[1:]))

    def generate(self, code: np.ndarray) -> np.ndarray:
        self._reshape(len(code))
        self.net.blobs[self.code_blob].data[...] = code
        self.net.forward()
        return self.net.blobs[self.image_blob].data.copy()

    def code_gradient(self, image_diff: np.ndarray) -> np.ndarray:
        self.net.blobs[self.image_blob].diff[...] = image_diff
        self.net.backward(start=self._backward_start)
        return self.net.blobs[self.code_blob].diff.copy()

    def _last_layer(self, blob: str) -> str:
        """The last layer whose top is ``blob`` (backward starts there)."""
        for name, tops in reversed(self.net.top_names.items()):
            if blob in tops:
                return name
        raise KeyError(blob)


class CaffeTarget:
    """The net being visualized, run up to the objective's layer and back to its input image."""

    def __init__(self, net: Any, act_layer: str, end_layer: str | None = None) -> None:
        # ``end_layer``: the layer that writes ``act_layer`` (netinfo.end_layer); the released code named it.
        self.net, self.act_layer, self.end_layer = net, act_layer, end_layer or act_layer
        shape = net.blobs["data"].data.shape
        self.input_size = (int(shape[2]), int(shape[3]))

    def activation_gradient(self, image: np.ndarray, objective: Objective) -> tuple[np.ndarray, np.ndarray]:
        data = self.net.blobs["data"]
        if data.data.shape[0] != len(image):
            data.reshape(len(image), *data.data.shape[1:])
            self.net.reshape()
        data.data[...] = image
        self.net.forward(end=self.end_layer)
        top = self.net.blobs[self.act_layer]
        acts = objective.values(top.data)
        top.diff[...] = objective.gradient(top.data)
        self.net.backward(start=self.end_layer)
        grad = data.diff.copy()
        top.diff[...] = 0
        return acts, grad


def encode(net: Any, data: np.ndarray, layer: str) -> np.ndarray:
    """Run the encoder forward on an input blob and return ``layer`` (after its in-place ReLU)."""
    blob = net.blobs["data"]
    if blob.data.shape[0] != len(data):
        blob.reshape(len(data), *blob.data.shape[1:])
        net.reshape()
    blob.data[...] = data
    net.forward()
    return net.blobs[layer].data.copy()


def _main(argv: list[str]) -> int:
    if argv[:1] == ["--probe"] and len(argv) == 2:
        print(json.dumps(_describe_built(argv[1])))
        return 0
    if argv[:1] == ["--gpu-check"] and len(argv) == 2:
        c = caffe()
        c.set_device(int(argv[1]))
        c.set_mode_gpu()
        c.Net  # noqa: B018 - touching the module after set_mode_gpu initializes the device
        print(f"device {argv[1]}")
        return 0
    print("usage: python -m dgn_am.caffe_backend --probe PROTOTXT | --gpu-check N", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
