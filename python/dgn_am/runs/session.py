"""DGN-AM runs end to end: check every input, load the nets once, optimize, write the results.

A ``Session`` holds the checked, loaded nets; each ``Run`` (a unit, its settings and an output folder)
is checked against them before anything is written: its numbers, its unit, its bound file and start
image, and every file it will write (``Session.check``). ``synthesize`` is one session with one run.

What a run writes is its own: a folder that already holds a *different* run under the same released
file name is refused (``--overwrite`` replaces it, old files first); two processes never write one run
at once (``locks``); the manifest goes last, so a run without one is unfinished and is simply redone.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend as cb
from ..assets.actrange import read_bounds
from ..assets.models import Models
from ..backend.netinfo import (
    NetInfo,
    check_backward_path,
    check_blob,
    check_generator,
    check_net_input,
    check_target_input,
    check_unit,
    end_layer,
    image_input_size,
    receptive_field,
)
from ..common import locks
from ..common.errors import InputError
from ..common.files import write_atomic
from ..core.algorithm import Iteration, Settings, Stop, optimize
from ..core.codes import random_code
from ..core.objectives import Objective, OneHotObjective, PairObjective, PerSample, Unit
from ..core.pixels import encoder_input, to_display, to_uint8
from ..results import manifest
from ..results.images import load_rgb
from ..results.outputs import encode_image, save_result
from .previous import check_not_another_run, clear_previous, replace_folder
from .run import (
    Run,
    RunBusy,
    RunFailed,
    batch_key,
    check_outputs,
    check_value,
    validate,
)


@dataclass
class Prepared:
    """A run, checked against the session's nets: what it maximizes and everything it reads and writes."""

    run: Run
    objective: Objective
    bounds: np.ndarray | None
    rgb: np.ndarray | None
    end_layer: str
    receptive_field: tuple[int, int, int, int] | None
    paths: dict[str, Path]
    models: dict[str, dict[str, Any]]


@dataclass
class Synthesis:
    """One run's result in memory (``Session.synthesize``), before or without any file (``Session.save``)."""

    run: Run
    code: np.ndarray  # 1 x code size: the optimized code
    image: np.ndarray  # 1 x 3 x H x W: the generator's image of it (BGR blob, the pixel scale)
    activations: np.ndarray  # the unit's activation at every iteration run
    stop: Stop | None  # why it ended before n_iters (a zero gradient), if it did
    label: str | None  # the unit's name (``labels``), if it has one
    receptive_field: tuple[int, int, int, int] | None
    device: str
    seconds: float
    batch: dict[str, Any]

    @property
    def activation(self) -> float:
        """The unit's activation at the result (the last iteration's)."""
        return float(self.activations[-1])

    def rgb(self) -> np.ndarray:
        """The result as the saved image shows it: H x W x 3 uint8 RGB, the released display range."""
        return to_uint8(to_display(self.image[0]))


@dataclass
class Outcome:
    paths: dict[str, Path]
    activations: np.ndarray
    iterations: int
    device: str
    receptive_field: tuple[int, int, int, int] | None
    stop: Stop | None = None  # why it ended before n_iters (a zero gradient), if it did


class Session:
    """Checked and loaded nets, reused by every run (a sweep loads them once).

    ``labels``: names of the target's units (``--labels``), recorded in each run's manifest as its
    ``label`` for galleries to show; they name results and change none.
    """

    def __init__(self, models: Models, labels: dict[int, str] | None = None) -> None:
        self.models = models
        self.labels = dict(labels or {})
        self.device = cb.set_mode(models.gpu)
        self.gen_net, self.gen_info = cb.load_net(models.generator_definition, models.generator_weights, backward=True)
        self.code_shape, image_shape = check_generator(self.gen_info, "feat", "deconv0")
        check_net_input(self.gen_info, "feat", "generator input")
        self.code_size = int(np.prod(self.code_shape[1:]))
        self.net, self.net_info = cb.load_net(models.net_definition, models.net_weights, backward=True)
        check_net_input(self.net_info, "data", "image input")
        self.input_size = check_target_input(self.net_info, image_shape)
        self.generator = cb.CaffeGenerator(self.gen_net)
        self._encoder: tuple[Any, NetInfo] | None = None
        self._layers = cb.spatial_layers(models.net_definition)
        self._checked: dict[Run, tuple] = {}

    def encoder(self) -> tuple[Any, NetInfo]:
        """The encoder, loaded on first use; the target net serves when it is the same model."""
        m = self.models
        if self._encoder is None:
            same = (m.encoder_definition, m.encoder_weights) == (m.net_definition, m.net_weights)
            self._encoder = (self.net, self.net_info) if same else cb.load_net(m.encoder_definition, m.encoder_weights)
        return self._encoder

    def model_records(self, with_encoder: bool) -> dict[str, dict[str, Any]]:
        return manifest.model_records(self.models, with_encoder, self.net_info, self.gen_info)

    def check_inputs(self, run: Run) -> tuple[Objective, np.ndarray | None, np.ndarray | None, str,
                                               tuple[int, int, int, int] | None]:
        """The run's numbers, unit, bound file, start image and receptive field, against these nets.

        All but the numbers are remembered per unit, position, layer and input files, so the thousand
        runs of a sweep read their bound file and start image once.
        """
        validate(run)
        key = replace(run, seed=0, n_iters=1, L2=1.0, start_lr=1.0, end_lr=1.0, output_dir=Path("."), debug=False)
        if key not in self._checked:
            self._checked[key] = self._check_inputs(run)
        return self._checked[key]

    def _check_inputs(self, run: Run) -> tuple[Objective, np.ndarray | None, np.ndarray | None, str,
                                                tuple[int, int, int, int] | None]:
        first = Unit(run.unit, run.x, run.y)
        check_unit(self.net_info, run.act_layer, first)
        objective: Objective = OneHotObjective([first])
        if run.unit2 is not None:
            second = Unit(run.unit2, run.x, run.y)
            check_unit(self.net_info, run.act_layer, second)
            objective = PairObjective(first, second, run.gamma)
        end = end_layer(self.net_info, run.act_layer)
        check_backward_path(self.net_info, run.act_layer, "data")
        bounds = read_bounds(run.bound, self.code_size, tuple(self.code_shape)) if run.bound else None
        rgb = None
        if run.init_file:
            rgb = load_rgb(run.init_file)
            _check_encoder_blob(self.encoder()[1], run.opt_layer, self.code_shape)
        rf = None
        if len(self.net_info.blobs[run.act_layer]) == 4:
            rf = receptive_field(self._layers, run.act_layer, run.x, run.y, self.input_size)
        return objective, bounds, rgb, end, rf

    def check(self, run: Run, overwrite: bool = False) -> Prepared:
        """Everything about ``run`` that can be wrong, before it writes anything."""
        objective, bounds, rgb, end, rf = self.check_inputs(run)
        inputs = [p for p in [*self.models.files(bool(run.init_file)), run.bound, run.init_file] if p]
        paths = check_outputs(run, rf is not None, inputs)
        prepared = Prepared(run, objective, bounds, rgb, end, rf, paths, self.model_records(rgb is not None))
        check_not_another_run(run, paths["json"], prepared.models, overwrite)
        return prepared

    def run(self, run: Run, progress: Callable[[Iteration], None] | None = None, overwrite: bool = False,
            resume: bool = False) -> Outcome | None:
        """Check ``run``, then make it under its lock: old files out, the result in, the manifest last.

        ``resume``: if the run turns out to be finished once the lock is held (another process made it
        meanwhile), return None instead of making it again.
        """
        result = self.run_batch([run], progress, overwrite, resume)[0]
        if isinstance(result, InputError):
            raise result
        return result

    def run_batch(self, runs: Sequence[Run], progress: Callable[[Iteration], None] | None = None,
                  overwrite: bool = False, resume: bool = False) -> list[Outcome | InputError | None]:
        """Make several compatible runs (``batch_key``) in one forward/backward pass per iteration.

        Each run stays its own: checked, locked, resumed, written and recorded as if it ran alone, and
        what happens to one (another process holds it: ``RunBusy``; NaN: ``RunFailed``) is returned in
        its place without stopping the others. A batch of one is exactly ``run``'s arithmetic; a larger
        batch agrees with it to float32 rounding at the first iteration (README: batching and numerics).
        """
        check_value("batch", len(runs), "a batch's size")
        if len({batch_key(r) for r in runs}) > 1:
            raise ValueError("runs of one batch must share nets, layers, iterations and schedule")
        prepared = [self.check(r, overwrite) for r in runs]
        results: list[Outcome | InputError | None] = [None] * len(runs)
        with contextlib.ExitStack() as held:
            todo = []
            for k, p in enumerate(prepared):
                run = p.run
                try:
                    held.enter_context(locks.exclusive(locks.run_lock(run.output_dir, run.stem()), wait=False))
                except locks.Busy:
                    results[k] = RunBusy(f"another dgn-am process is making {run.stem()} in {run.output_dir} "
                                         "right now")
                    continue
                if resume and manifest.finished(p.paths["json"], asdict(run), p.models):
                    continue
                # another process may have written it meanwhile
                check_not_another_run(p.run, p.paths["json"], p.models, overwrite)
                todo.append(k)
            if todo:
                for k, out in zip(todo, self._make([prepared[k] for k in todo], progress), strict=True):
                    results[k] = out
        return results

    def label(self, run: Run) -> str | None:
        """The name of the run's unit (both units of a pair) from ``labels``, or None where it has none."""
        names = [self.labels.get(u) for u in (run.unit, run.unit2) if u is not None]
        if not all(names):
            return None
        return " + ".join(n for n in names if n)

    def _start(self, p: Prepared) -> np.ndarray:
        if p.rgb is not None:
            return _encode_start(self.encoder(), p.run.opt_layer, p.rgb, self.code_shape).reshape(1, self.code_size)
        return random_code(p.run.seed, (1, self.code_size)).reshape(1, self.code_size)

    def synthesize(self, runs: Sequence[Run], progress: Callable[[Iteration], None] | None = None,
                   ) -> list[Synthesis | RunFailed]:
        """Compatible runs (``batch_key``) in one pass, kept in memory: no output folder is read or written.

        The arithmetic is ``run_batch``'s; ``save`` writes a result afterwards, as the run would have.
        """
        check_value("batch", len(runs), "a batch's size")
        if len({batch_key(r) for r in runs}) > 1:
            raise ValueError("runs of one batch must share nets, layers, iterations and schedule")
        prepared = [Prepared(r, *self.check_inputs(r), {}, {}) for r in runs]
        return self._compute(prepared, progress)

    def save(self, result: Synthesis, output_dir: Path, overwrite: bool = False) -> Outcome:
        """Write an in-memory result into ``output_dir`` under its released names, the manifest last."""
        run = replace(result.run, output_dir=Path(output_dir), debug=False)
        p = self.check(run, overwrite)
        try:
            with locks.exclusive(locks.run_lock(run.output_dir, run.stem()), wait=False):
                check_not_another_run(p.run, p.paths["json"], p.models, overwrite)
                clear_previous(p.run, p.paths, p.models)
                return self._write(p, replace(result, run=run))
        except locks.Busy:
            raise RunBusy(f"another dgn-am process is making {run.stem()} in {run.output_dir} right now") from None

    def _compute(self, ps: list[Prepared], on_iteration: Callable[[Iteration], None] | None,
                 ) -> list[Synthesis | RunFailed]:
        """The optimization itself, one pass for all of ``ps``; a run that ended in NaN is a RunFailed."""
        first = ps[0].run
        started = time.perf_counter()
        start = np.concatenate([self._start(p) for p in ps])
        if len(ps) == 1:  # the released loop's own scalars, untouched
            p = ps[0]
            settings = Settings(first.n_iters, first.start_lr, first.end_lr, first.L2, first.clip, p.bounds)
            objective = p.objective
        else:
            bounds = None if ps[0].bounds is None else np.stack([p.bounds for p in ps])
            settings = Settings(first.n_iters, first.start_lr, first.end_lr, np.array([p.run.L2 for p in ps]),
                                first.clip, bounds)
            objective = PerSample([p.objective for p in ps])
        target = cb.CaffeTarget(self.net, first.act_layer, ps[0].end_layer)
        with cb.batched_convolution(len(ps), self.models.gpu is not None) as convolution:
            result = optimize(self.generator, target, objective, start, settings, on_iteration)
        seconds = time.perf_counter() - started
        fast = cb.fast_math()
        out: list[Synthesis | RunFailed] = []
        for b, p in enumerate(ps):
            run, stop = p.run, result.stops[b]
            if stop is not None and stop.failed:
                out.append(RunFailed(f"{run.stem()} failed at iteration {stop.iteration + 1} of {run.n_iters}: "
                                     f"{stop.reason}; no result was written"))
                continue
            ran = result.iterations if stop is None else stop.iteration + 1
            batch = {"size": len(ps), "position": b, "fast_math": fast, "convolution": convolution}
            out.append(Synthesis(run, result.code[b : b + 1], result.image[b : b + 1], result.activations[b, :ran],
                                 stop, self.label(run), p.receptive_field, self.device, seconds, batch))
        return out

    def _make(self, ps: list[Prepared], progress: Callable[[Iteration], None] | None) -> list[Outcome | RunFailed]:
        for p in ps:
            clear_previous(p.run, p.paths, p.models)
        # Debug frames go to hidden folders that replace the visible ones only when a run succeeded.
        frames = [p.run.output_dir / f".{p.run.stem()}_debug.partial" if p.run.debug else None for p in ps]
        for folder in frames:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()

        def on_iteration(it: Iteration) -> None:
            for b, folder in enumerate(frames):
                if folder is not None:
                    # act_max.py's debug frames: each iteration's image after the image step
                    write_atomic(folder / f"{str(it.index).zfill(3)}.jpg", encode_image(it.stepped[b], "JPEG"))
            if progress is not None:
                progress(it)

        out: list[Outcome | RunFailed] = []
        try:
            made = self._compute(ps, on_iteration)
            for p, folder, result in zip(ps, frames, made, strict=True):
                if isinstance(result, RunFailed):
                    out.append(result)
                    continue
                if folder is not None:  # and, as frame n_iters, the saved result itself
                    write_atomic(folder / f"{str(p.run.n_iters).zfill(3)}.jpg", encode_image(result.image[0], "JPEG"))
                    replace_folder(folder, p.run.frames_dir())
                out.append(self._write(p, result))
        finally:
            for folder in frames:
                if folder is not None:
                    shutil.rmtree(folder, ignore_errors=True)
        return out

    def _write(self, p: Prepared, r: Synthesis) -> Outcome:
        """One run's files, then its manifest last."""
        run = p.run
        paths = save_result(run.output_dir, run.stem(), r.code, r.image, r.activations, p.receptive_field)
        stopped = None if r.stop is None else {"iteration": r.stop.iteration, "iterations_run": len(r.activations),
                                               "of": run.n_iters, "reason": r.stop.reason}
        results = {"outputs": {k: v.name for k, v in paths.items()}, "iterations": len(r.activations),
                   "final_activation": float(r.activations[-1]), "receptive_field": p.receptive_field,
                   "stopped_early": stopped}
        paths["json"] = p.paths["json"]
        record = manifest.build(asdict(run), p.models, cb.build_info(), self.device, results, r.seconds, r.batch,
                                label=r.label)
        manifest.write(paths["json"], record)
        return Outcome(paths, r.activations, len(r.activations), self.device, p.receptive_field, r.stop)


def synthesize(models: Models, run: Run, progress: Callable[[Iteration], None] | None = None,
               overwrite: bool = False, labels: dict[int, str] | None = None) -> Outcome:
    """One run in a fresh session: what ``dgn-am synthesize`` does."""
    validate(run)
    inputs = [p for p in [*models.files(bool(run.init_file)), run.bound, run.init_file] if p]
    check_outputs(run, False, inputs)  # the names that do not depend on the nets, before they load
    if run.init_file:
        load_rgb(run.init_file)  # a bad start image fails before the nets load
    outcome = Session(models, labels).run(run, progress, overwrite)
    assert outcome is not None  # only resume=True returns None
    return outcome


def _check_encoder_blob(info: NetInfo, opt_layer: str, code_shape: tuple[int, ...]) -> None:
    shape = check_blob(info, opt_layer, "--opt_layer")
    if tuple(shape[1:]) != tuple(code_shape[1:]):
        raise InputError(
            f"encoder blob '{opt_layer}' is {list(shape[1:])} but the generator's code is {list(code_shape[1:])}"
        )
    check_net_input(info, "data", "encoder input")


def _encode_start(
    encoder: tuple[Any, NetInfo], opt_layer: str, rgb: np.ndarray, code_shape: tuple[int, ...]
) -> np.ndarray:
    """The code of a real image: the encoder's forward pass to ``opt_layer`` (post-ReLU), as released."""
    net, info = encoder
    _check_encoder_blob(info, opt_layer, code_shape)
    data = encoder_input(rgb, cb.imagenet_mean(), image_input_size(info))
    return cb.encode(net, data, opt_layer).reshape(1, -1).astype(np.float64)
