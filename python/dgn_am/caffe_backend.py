"""The boundary with Caffe: the only module that imports it.

Caffe aborts the whole process on a failed CHECK, and its weight loading ignores layers it cannot
match. So nothing a user gives reaches Caffe unchecked: a net definition is parsed here first, then
built once in a child process (``probe``), whose death is turned into one line; a caffemodel is parsed
and compared against the probed net (``netinfo.check_weights``) before ``caffe.Net`` sees it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, read_input
from .netinfo import NetInfo, SpatialLayer, WeightBlob, WeightsInfo, check_weights
from .objectives import Objective

os.environ.setdefault("GLOG_minloglevel", "2")  # Caffe's INFO/WARNING chatter; must precede the import


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
    """Parse a prototxt and check what Caffe would otherwise abort on: layer types and engines."""
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
    for layer in net.layer:
        if layer.type not in known:
            raise InputError(f"net definition {path}: layer '{layer.name}' has unknown type '{layer.type}'")
        for field in _ENGINE_PARAMS:
            if layer.HasField(field) and getattr(layer, field).engine == 2 and not cudnn:  # 2 = CUDNN
                raise InputError(
                    f"net definition {path}: layer '{layer.name}' asks for engine CUDNN, but this Caffe "
                    "was built without cuDNN; delete its 'engine: CUDNN' line"
                )
    return net


def probe(path: Path) -> NetInfo:
    """Build the net once in a child process and describe it; a Caffe abort there becomes one line."""
    parse_definition(path)
    env = dict(os.environ, GLOG_minloglevel="2")
    proc = subprocess.run(
        [sys.executable, "-m", "dgn_am.caffe_backend", "--probe", str(path)],
        capture_output=True, text=True, env=env, check=False,
    )
    if proc.returncode != 0:
        raise InputError(f"Caffe rejected net definition {path}: {_caffe_reason(proc.stderr)}")
    d = json.loads(proc.stdout.strip().splitlines()[-1])
    return NetInfo(
        path=Path(path),
        blobs={k: tuple(v) for k, v in d["blobs"].items()},
        params={k: [tuple(s) for s in v] for k, v in d["params"].items()},
        layers=[tuple(x) for x in d["layers"]],
        inputs=d["inputs"],
    )


def _caffe_reason(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if "Check failed" in ln or "Unknown" in ln or "Error" in ln:
            return ln.split("] ", 1)[-1]
    return lines[-1] if lines else "the process died without a message"


def _describe_built(path: str) -> dict[str, Any]:
    c = caffe()
    net = c.Net(path, c.TEST)
    return {
        "blobs": {k: list(v.data.shape) for k, v in net.blobs.items()},
        "params": {k: [list(p.data.shape) for p in v] for k, v in net.params.items()},
        "layers": [[n, lyr.type] for n, lyr in zip(net._layer_names, net.layers, strict=True)],
        "inputs": list(net.inputs),
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


def read_weights(path: Path) -> WeightsInfo:
    """Parse a caffemodel far enough to know each layer's blob shapes and value counts."""
    from google.protobuf.message import DecodeError

    pb = _proto()
    data = read_input(path, "weights file", binary=True, hint="; run 'dgn-am download' or give the right path")
    net = pb.NetParameter()
    try:
        net.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):
        raise InputError(f"weights file {path} does not parse as a caffemodel") from None
    layers: dict[str, list[WeightBlob]] = {}
    for layer in list(net.layer) + list(net.layers):  # 'layers' is the V1 format of 2014 caffemodels
        if not layer.blobs:
            continue
        layers[layer.name] = [_blob(b) for b in layer.blobs]
    return WeightsInfo(path=Path(path), layers=layers)


def _blob(b: Any) -> WeightBlob:
    count = len(b.data) or len(b.double_data)
    if b.HasField("shape"):
        return WeightBlob(tuple(b.shape.dim), legacy=False, count=count)
    return WeightBlob((b.num, b.channels, b.height, b.width), legacy=True, count=count)


# --- loading ----------------------------------------------------------------------------------


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


def load_net(definition: Path, weights: Path) -> tuple[Any, NetInfo]:
    """A checked ``caffe.Net`` in TEST phase with its weights, and its description."""
    info = probe(definition)
    check_weights(info, read_weights(weights))
    c = caffe()
    return c.Net(str(definition), c.TEST, weights=str(weights)), info


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
    types = dict(zip(net._layer_names, (lyr.type for lyr in net.layers), strict=True))
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
        """The layer whose top is ``blob`` (backward starts there)."""
        names = list(self.net._layer_names)
        for i in range(len(names) - 1, -1, -1):
            if blob in [self.net._blob_names[j] for j in self.net._top_ids(i)]:
                return names[i]
        raise KeyError(blob)


class CaffeTarget:
    """The net being visualized, run up to the objective's layer and back to its input image."""

    def __init__(self, net: Any, act_layer: str) -> None:
        self.net, self.act_layer = net, act_layer
        shape = net.blobs["data"].data.shape
        self.input_size = (int(shape[2]), int(shape[3]))

    def activation_gradient(self, image: np.ndarray, objective: Objective) -> tuple[np.ndarray, np.ndarray]:
        data = self.net.blobs["data"]
        if data.data.shape[0] != len(image):
            data.reshape(len(image), *data.data.shape[1:])
            self.net.reshape()
        data.data[...] = image
        self.net.forward(end=self.act_layer)
        top = self.net.blobs[self.act_layer]
        acts = objective.values(top.data)
        top.diff[...] = objective.gradient(top.data)
        self.net.backward(start=self.act_layer)
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
