"""Loading checked nets, and the nets as the algorithm sees them (``core.algorithm``'s two Protocols).

Everything that moves arrays in and out of a ``caffe.Net`` goes through ``feed`` and pycaffe's public
API (``blobs``, ``params``, ``top_names``, ``layer_dict``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..common.errors import InputError
from ..core.objectives import Objective
from .definitions import prepare_definition
from .netinfo import NetInfo, check_weights
from .probing import _probe, probe
from .runtime import caffe
from .weights import read_weights


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


# --- the nets as the algorithm sees them -----------------------------------------------------


def feed(net: Any, **arrays: np.ndarray) -> None:
    """Copy arrays into the net's blobs of those names, reshaping the net once where a batch size changed.

    The one place that reshapes. An array with the blob's number of axes sets the blob's whole shape (a
    training batch); one with another number of axes keeps the blob's own trailing shape and fills it in
    order (a flat code of 9216 values into pool5's 256 x 6 x 6 input): a convolution must never be handed
    a bottom with fewer axes, which Caffe answers with an abort.
    """
    changed = False
    for name, value in arrays.items():
        blob = net.blobs[name]
        shape = tuple(blob.data.shape)
        want = tuple(value.shape) if value.ndim == len(shape) else (len(value), *shape[1:])
        if int(np.prod(want)) != value.size:
            raise ValueError(f"blob '{name}' takes {shape[1:]} per sample, not {value.shape[1:]}")
        if want != shape:
            blob.reshape(*want)
            changed = True
    if changed:
        net.reshape()
    for name, value in arrays.items():
        blob = net.blobs[name]
        blob.data[...] = value.reshape(blob.data.shape)


class CaffeGenerator:
    """A generator net: code blob in, image blob out, and the gradient from the image to the code."""

    def __init__(self, net: Any, code_blob: str = "feat", image_blob: str = "deconv0") -> None:
        self.net, self.code_blob, self.image_blob = net, code_blob, image_blob
        self._backward_start = self._last_layer(image_blob)
        blob = net.blobs[code_blob]
        feed(net, **{code_blob: np.zeros((1, *blob.data.shape[1:]), dtype=np.float32)})

    @property
    def code_size(self) -> int:
        return int(np.prod(self.net.blobs[self.code_blob].data.shape[1:]))

    def generate(self, code: np.ndarray) -> np.ndarray:
        feed(self.net, **{self.code_blob: code})
        self.net.forward()
        return self.net.blobs[self.image_blob].data.copy()

    def code_gradient(self, image_diff: np.ndarray) -> np.ndarray:
        self.net.blobs[self.image_blob].diff[...] = image_diff
        self.net.backward(start=self._backward_start)
        diff = self.net.blobs[self.code_blob].diff
        return diff.reshape(len(diff), -1).copy()  # flat, as the code is (pool5's 256 x 6 x 6 included)

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
        feed(self.net, data=image)
        self.net.forward(end=self.end_layer)
        top = self.net.blobs[self.act_layer]
        acts = objective.values(top.data)
        top.diff[...] = objective.gradient(top.data)
        self.net.backward(start=self.end_layer)
        grad = self.net.blobs["data"].diff.copy()
        top.diff[...] = 0
        return acts, grad


def encode(net: Any, data: np.ndarray, layer: str) -> np.ndarray:
    """Run the encoder forward on an input blob and return ``layer`` (after its in-place ReLU)."""
    feed(net, data=data)
    net.forward()
    return net.blobs[layer].data.copy()


def encode_many(net: Any, data: np.ndarray, layers: list[str]) -> dict[str, np.ndarray]:
    """One forward pass, several blobs: each as ``encode`` returns it (S22 compares codes of several layers)."""
    feed(net, data=data)
    net.forward()
    return {layer: net.blobs[layer].data.copy() for layer in layers}
