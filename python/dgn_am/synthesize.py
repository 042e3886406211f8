"""DGN-AM runs end to end: check every input, load the nets once, optimize, write the results.

A ``Session`` holds the checked, loaded nets; each ``Run`` (a unit, its settings and an output folder)
is checked against them before anything is written. ``synthesize`` is one session with one run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import caffe_backend as cb
from . import manifest
from .algorithm import Iteration, Settings, optimize
from .codes import random_code, read_bounds
from .errors import InputError
from .images import encoder_input, load_rgb
from .netinfo import (
    NetInfo,
    check_blob,
    check_generator,
    check_target_input,
    check_unit,
    image_input_size,
    receptive_field,
)
from .objectives import Objective, OneHotObjective, PairObjective, Unit
from .outputs import encode_image, ensure_writable_dir, result_stem, save_result, write_atomic


@dataclass(frozen=True)
class Models:
    """The nets of a session: the target, the generator and (for start images) the encoder."""

    net_definition: Path
    net_weights: Path
    generator_definition: Path
    generator_weights: Path
    encoder_definition: Path
    encoder_weights: Path
    gpu: int | None = None


@dataclass(frozen=True)
class Run:
    """One optimization, with act_max.py's settings. ``unit2`` (with ``gamma``) drives two units at once."""

    unit: int
    n_iters: int = 10
    L2: float = 1.0
    start_lr: float = 2.0
    end_lr: float = 2.0
    seed: int = 0
    x: int = 0
    y: int = 0
    opt_layer: str = "fc6"
    act_layer: str = "fc8"
    clip: bool = False
    debug: bool = False
    init_file: Path | None = None
    bound: Path | None = None
    output_dir: Path = Path(".")
    unit2: int | None = None
    gamma: float = 0.0

    def stem(self) -> str:
        """The released file name, extended only where the released code had no such option."""
        stem = result_stem(self.act_layer, self.unit, self.n_iters, self.L2, self.start_lr, self.seed)
        extra = ""
        if self.unit2 is not None:
            extra += f"_and_{str(self.unit2).zfill(4)}_gamma{self.gamma!r}"
        if self.x != self.y:
            extra += f"_x{self.x}_y{self.y}"
        head, _, tail = stem.partition(f"_{str(self.n_iters).zfill(2)}_")
        return f"{head}{extra}_{str(self.n_iters).zfill(2)}_{tail}" if extra else stem


@dataclass
class Outcome:
    paths: dict[str, Path]
    activations: np.ndarray
    iterations: int
    device: str
    receptive_field: tuple[int, int, int, int] | None


class Session:
    """Checked and loaded nets, reused by every run (a sweep loads them once)."""

    def __init__(self, models: Models) -> None:
        self.models = models
        self.device = cb.set_mode(models.gpu)
        self.gen_net, self.gen_info = cb.load_net(models.generator_definition, models.generator_weights)
        self.code_shape, image_shape = check_generator(self.gen_info, "feat", "deconv0")
        self.code_size = int(np.prod(self.code_shape[1:]))
        self.net, self.net_info = cb.load_net(models.net_definition, models.net_weights)
        self.input_size = check_target_input(self.net_info, image_shape)
        self.generator = cb.CaffeGenerator(self.gen_net)
        self._encoder: tuple[Any, NetInfo] | None = None
        self._layers = cb.spatial_layers(models.net_definition)

    def encoder(self) -> tuple[Any, NetInfo]:
        """The encoder, loaded on first use; the target net serves when it is the same model."""
        m = self.models
        if self._encoder is None:
            same = (m.encoder_definition, m.encoder_weights) == (m.net_definition, m.net_weights)
            self._encoder = (self.net, self.net_info) if same else cb.load_net(m.encoder_definition, m.encoder_weights)
        return self._encoder

    def check(self, run: Run) -> tuple[Objective, np.ndarray | None, np.ndarray | None]:
        """Everything about ``run`` that can be wrong, before it writes anything."""
        first = Unit(run.unit, run.x, run.y)
        check_unit(self.net_info, run.act_layer, first)
        objective: Objective = OneHotObjective([first])
        if run.unit2 is not None:
            second = Unit(run.unit2, run.x, run.y)
            check_unit(self.net_info, run.act_layer, second)
            objective = PairObjective(first, second, run.gamma)
        bounds = read_bounds(run.bound, self.code_size) if run.bound else None
        rgb = load_rgb(run.init_file) if run.init_file else None
        return objective, bounds, rgb

    def receptive_field(self, run: Run) -> tuple[int, int, int, int] | None:
        if len(self.net_info.blobs[run.act_layer]) != 4:
            return None
        return receptive_field(self._layers, run.act_layer, run.x, run.y, self.input_size)

    def run(self, run: Run, progress: Callable[[Iteration], None] | None = None) -> Outcome:
        objective, bounds, rgb = self.check(run)
        out_dir = ensure_writable_dir(run.output_dir)
        started = time.perf_counter()
        if rgb is not None:
            start = _encode_start(self.encoder(), run.opt_layer, rgb, self.code_shape)
        else:
            start = random_code(run.seed, (1, self.code_size))

        stem = run.stem()
        frames = out_dir / f"{stem}_debug" if run.debug else None
        if frames is not None:
            frames.mkdir(exist_ok=True)

        def on_iteration(it: Iteration) -> None:
            if frames is not None:
                # act_max.py's debug frames: each iteration's image after the image step
                write_atomic(frames / f"{str(it.index).zfill(3)}.jpg", encode_image(it.stepped[0], "JPEG"))
            if progress is not None:
                progress(it)

        settings = Settings(run.n_iters, run.start_lr, run.end_lr, run.L2, run.clip, bounds)
        target = cb.CaffeTarget(self.net, run.act_layer)
        result = optimize(self.generator, target, objective, start.reshape(1, self.code_size), settings, on_iteration)
        if frames is not None:  # and, as frame n_iters, the saved result itself
            write_atomic(frames / f"{str(run.n_iters).zfill(3)}.jpg", encode_image(result.image[0], "JPEG"))
        rf = self.receptive_field(run)
        paths = save_result(out_dir, stem, result.code, result.image, result.activations[0], rf)
        m = self.models
        models = {"target": manifest.model_record(m.net_definition, m.net_weights),
                  "generator": manifest.model_record(m.generator_definition, m.generator_weights)}
        if rgb is not None:
            models["encoder"] = manifest.model_record(m.encoder_definition, m.encoder_weights)
        results = {"outputs": {k: p.name for k, p in paths.items()}, "iterations": result.iterations,
                   "final_activation": float(result.activations[0, -1]), "receptive_field": rf}
        paths["json"] = out_dir / f"{stem}.json"
        record = manifest.build(asdict(run), models, cb.build_info(), self.device, results,
                                time.perf_counter() - started)
        manifest.write(paths["json"], record)
        return Outcome(paths, result.activations[0], result.iterations, self.device, rf)


def synthesize(models: Models, run: Run, progress: Callable[[Iteration], None] | None = None) -> Outcome:
    """One run in a fresh session: what ``dgn-am synthesize`` does."""
    ensure_writable_dir(run.output_dir)
    if run.init_file:
        load_rgb(run.init_file)  # a bad start image fails before the nets load
    return Session(models).run(run, progress)


def _encode_start(
    encoder: tuple[Any, NetInfo], opt_layer: str, rgb: np.ndarray, code_shape: tuple[int, ...]
) -> np.ndarray:
    """The code of a real image: the encoder's forward pass to ``opt_layer`` (post-ReLU), as released."""
    net, info = encoder
    shape = check_blob(info, opt_layer, "--opt_layer")
    if tuple(shape[1:]) != tuple(code_shape[1:]):
        raise InputError(
            f"encoder blob '{opt_layer}' is {list(shape[1:])} but the generator's code is {list(code_shape[1:])}"
        )
    data = encoder_input(rgb, cb.imagenet_mean(), image_input_size(info))
    return cb.encode(net, data, opt_layer).reshape(1, -1).astype(np.float64)
