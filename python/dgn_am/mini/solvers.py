"""Training through pycaffe: solver prototxts, Input blobs fed from NumPy, steps, and evaluation.

The miniature nets are trained the way Caffe trains nets (a real solver prototxt, ``caffe.get_solver``,
``solver.step``), except that the data does not come from a Data layer: every training net takes its
batches through Input layers, which Caffe leaves untouched on forward, so writing a batch into those
blobs before ``solver.step(1)`` makes that step train on it. This is the one module of ``dgn_am.mini``
that drives Caffe for training; the rest is NumPy.

Determinism: ``make_solver`` seeds Caffe's generator (fillers, Dropout) through the solver's
``random_seed`` and ``caffe.set_random_seed``; with the same seed, net and batches a CPU run repeats.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import caffe, feed, proto
from ..common.files import write_atomic


@dataclass(frozen=True)
class SolverConfig:
    """The fields of a Caffe SolverParameter that the miniature nets use.

    ``stepvalue`` are the iterations at which a ``multistep`` policy multiplies the rate by ``gamma``.
    """

    max_iter: int
    base_lr: float = 1e-3
    type: str = "Adam"
    momentum: float = 0.9
    momentum2: float = 0.999
    delta: float = 1e-8
    weight_decay: float = 5e-4
    lr_policy: str = "fixed"
    gamma: float = 0.1
    stepvalue: tuple[int, ...] = field(default_factory=tuple)
    random_seed: int = 0


def write_net(proto: Any, path: Path) -> Path:
    """Write a NetParameter (e.g. from ``netspecs``) as prototxt text."""
    path = Path(path)
    write_atomic(path, str(proto).encode())
    return path


def write_solver(net_path: Path, config: SolverConfig, path: Path) -> Path:
    """Write a solver prototxt that trains ``net_path`` with ``config`` (CPU, no snapshots, no display)."""
    caffe_pb2 = proto()
    s = caffe_pb2.SolverParameter()
    s.net = str(net_path)
    s.type = config.type
    s.base_lr = config.base_lr
    s.momentum = config.momentum
    if config.type == "Adam":
        s.momentum2 = config.momentum2
        s.delta = config.delta
    s.weight_decay = config.weight_decay
    s.lr_policy = config.lr_policy
    s.gamma = config.gamma
    s.stepvalue.extend(config.stepvalue)
    s.max_iter = config.max_iter
    s.random_seed = config.random_seed
    s.display = 0
    s.snapshot = 0
    s.snapshot_after_train = False
    s.solver_mode = caffe_pb2.SolverParameter.CPU
    path = Path(path)
    write_atomic(path, str(s).encode())
    return path


def make_solver(net_proto: Any, config: SolverConfig, workdir: Path, name: str = "net") -> Any:
    """A ready Caffe solver for ``net_proto``: writes ``{name}.prototxt`` and ``{name}_solver.prototxt``
    into ``workdir`` (keep it alive as long as the solver) and builds the solver from them."""
    c = caffe()
    c.set_mode_cpu()
    c.set_random_seed(config.random_seed)
    workdir = Path(workdir)
    net_path = write_net(net_proto, workdir / f"{name}.prototxt")
    return c.get_solver(str(write_solver(net_path, config, workdir / f"{name}_solver.prototxt")))


def set_inputs(net: Any, **arrays: np.ndarray) -> None:
    """Copy arrays into the net's blobs of the same names (``backend.feed``, the one owner of reshaping)."""
    feed(net, **arrays)


def step(solver: Any, outputs: tuple[str, ...] = ("loss",), **arrays: np.ndarray) -> dict[str, float]:
    """One solver iteration (forward, backward, update) on the given input batch.

    Returns the named scalar blobs of the training net (e.g. ``loss``, ``accuracy``) as computed in
    that iteration's forward pass, before the update.
    """
    set_inputs(solver.net, **arrays)
    solver.step(1)
    return {name: float(solver.net.blobs[name].data.flat[0]) for name in outputs}


def minibatches(n: int, batch: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index batches of size ``batch`` over ``n`` items, reshuffled every epoch, forever.

    A batch never straddles two epochs; the last ``n % batch`` items of an epoch's order wait for the
    next shuffle, so every batch has the same size and the training net never reshapes.
    """
    if batch > n:
        raise ValueError(f"batch {batch} is larger than the data ({n})")
    while True:
        order = rng.permutation(n)
        for start in range(0, n - batch + 1, batch):
            yield order[start : start + batch]


def forward_all(net: Any, data: np.ndarray, output: str, batch: int = 100, input_blob: str = "data") -> np.ndarray:
    """Run a deploy net forward over ``data`` in batches and stack blob ``output`` (a copy)."""
    out = []
    for start in range(0, len(data), batch):
        set_inputs(net, **{input_blob: data[start : start + batch]})
        net.forward()
        out.append(net.blobs[output].data.copy())
    return np.concatenate(out) if out else np.zeros((0,), dtype=np.float32)


def accuracy(net: Any, data: np.ndarray, labels: np.ndarray, output: str = "prob", batch: int = 100) -> float:
    """Share of ``data`` whose arg-max of blob ``output`` equals ``labels``."""
    scores = forward_all(net, data, output, batch)
    return float(np.mean(scores.reshape(len(data), -1).argmax(axis=1) == labels))


def deploy_net(proto: Any, weights_from: Any | None = None, weights: Path | None = None) -> Any:
    """A TEST-phase net of ``proto`` with the weights of net ``weights_from`` (by layer name) or a file.

    Used to evaluate a training net's current weights through the deploy definition, as a user of the
    shipped files would run it.
    """
    c = caffe()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_net(proto, Path(tmp) / "deploy.prototxt")
        net = c.Net(str(path), c.TEST, weights=str(weights)) if weights else c.Net(str(path), c.TEST)
    if weights_from is not None:
        copy_weights(weights_from, net)
    return net


def copy_weights(src: Any, dst: Any) -> None:
    """Copy every parameter blob of ``src`` into the layer of the same name in ``dst``, where it has one."""
    for name, params in dst.params.items():
        if name in src.params:
            for d, s in zip(params, src.params[name], strict=True):
                d.data[...] = s.data


def save_weights(net: Any, path: Path) -> Path:
    """``net.save`` into a scratch folder, then ``write_atomic``: a reader never sees half a model."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".save-") as tmp:
        scratch = Path(tmp) / path.name
        net.save(str(scratch))
        write_atomic(path, scratch.read_bytes())
    return path
