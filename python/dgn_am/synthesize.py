"""One ``dgn-am synthesize`` run: check every input, load the nets, optimize, write the results.

Everything a user gives is checked here, in the order that fails fastest and before any file is
written: numbers and files first, then each net (built in a child process) and its weights, then the
unit against the net it names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import caffe_backend as cb
from .algorithm import Iteration, Settings, optimize
from .codes import random_code, read_bounds
from .errors import InputError
from .images import encoder_input, load_rgb
from .netinfo import NetInfo, check_blob, check_generator, check_target_input, check_unit, image_input_size
from .objectives import OneHotObjective, Unit
from .outputs import encode_image, ensure_writable_dir, result_stem, save_result, write_atomic


@dataclass
class Request:
    unit: int
    n_iters: int
    L2: float
    start_lr: float
    end_lr: float
    seed: int
    x: int
    y: int
    opt_layer: str
    act_layer: str
    clip: bool
    debug: bool
    init_file: Path | None
    bound: Path | None
    output_dir: Path
    net_definition: Path
    net_weights: Path
    generator_definition: Path
    generator_weights: Path
    encoder_definition: Path
    encoder_weights: Path
    gpu: int | None = None


@dataclass
class Outcome:
    paths: dict[str, Path]
    activations: np.ndarray
    iterations: int
    device: str


def synthesize(req: Request, progress: Callable[[Iteration], None] | None = None) -> Outcome:
    out_dir = ensure_writable_dir(req.output_dir)
    init_rgb = load_rgb(req.init_file) if req.init_file else None
    device = cb.set_mode(req.gpu)

    gen_net, gen_info = cb.load_net(req.generator_definition, req.generator_weights)
    code_shape, image_shape = check_generator(gen_info, "feat", "deconv0")
    target_net, target_info = cb.load_net(req.net_definition, req.net_weights)
    input_size = check_target_input(target_info, image_shape)
    unit = Unit(req.unit, req.x, req.y)
    check_unit(target_info, req.act_layer, unit)
    code_size = int(np.prod(code_shape[1:]))
    bounds = read_bounds(req.bound, code_size) if req.bound else None

    if init_rgb is not None:
        same = (req.encoder_definition, req.encoder_weights) == (req.net_definition, req.net_weights)
        encoder = (target_net, target_info) if same else cb.load_net(req.encoder_definition, req.encoder_weights)
        start = _encode_start(encoder, req.opt_layer, init_rgb, code_shape)
    else:
        start = random_code(req.seed, (1, code_size))

    generator = cb.CaffeGenerator(gen_net)
    target = cb.CaffeTarget(target_net, req.act_layer)
    assert target.input_size == input_size
    settings = Settings(req.n_iters, req.start_lr, req.end_lr, req.L2, req.clip, bounds)
    stem = result_stem(req.act_layer, req.unit, req.n_iters, req.L2, req.start_lr, req.seed)

    frames = out_dir / "debug" if req.debug else None
    if frames is not None:
        frames.mkdir(exist_ok=True)

    def on_iteration(it: Iteration) -> None:
        if frames is not None:
            write_atomic(frames / f"{str(it.index).zfill(3)}.jpg", encode_image(it.image[0], "JPEG"))
        if progress is not None:
            progress(it)

    result = optimize(generator, target, OneHotObjective([unit]), start.reshape(1, code_size), settings,
                      on_iteration)
    saved = save_result(out_dir, stem, result.code, result.image, result.activations[0])
    return Outcome(saved, result.activations[0], result.iterations, device)


def _encode_start(
    encoder: tuple[Any, NetInfo], opt_layer: str, rgb: np.ndarray, code_shape: tuple[int, ...]
) -> np.ndarray:
    """The code of a real image: the encoder's forward pass to ``opt_layer`` (post-ReLU), as released.

    The encoder is CaffeNet unless the user names another; when it is also the target net, that
    already loaded net serves (the loop rewrites its input blob every iteration anyway).
    """
    net, info = encoder
    shape = check_blob(info, opt_layer, "--opt_layer")
    if tuple(shape[1:]) != tuple(code_shape[1:]):
        raise InputError(
            f"encoder blob '{opt_layer}' is {list(shape[1:])} but the generator's code is {list(code_shape[1:])}"
        )
    data = encoder_input(rgb, cb.imagenet_mean(), image_input_size(info))
    return cb.encode(net, data, opt_layer).reshape(1, -1).astype(np.float64)
