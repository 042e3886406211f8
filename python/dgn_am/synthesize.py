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
import math
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import caffe_backend as cb
from . import locks, manifest, paths
from .algorithm import Iteration, Settings, Stop, optimize
from .codes import random_code, read_bounds
from .errors import InputError
from .images import encoder_input, load_rgb
from .netinfo import (
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
from .objectives import Objective, OneHotObjective, PairObjective, PerSample, Unit
from .outputs import (
    check_destination,
    encode_image,
    ensure_writable_dir,
    result_files,
    result_stem,
    save_result,
    write_atomic,
)

#: The code layers a generator of the release inverts (and an encoder blob a start image goes to).
OPT_LAYERS = paths.CODE_LAYERS
#: Far more iterations than any published run (200); a typo such as 10**12 would run for centuries.
MAX_ITERS = 100_000
#: The most runs one forward/backward pass may hold; past a few dozen a CPU gains nothing (scripts/benchmark.py).
MAX_BATCH = 1024


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

    def files(self, with_encoder: bool = True) -> list[Path]:
        out = [self.net_definition, self.net_weights, self.generator_definition, self.generator_weights]
        return out + ([self.encoder_definition, self.encoder_weights] if with_encoder else [])


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

    def manifest_path(self) -> Path:
        return self.output_dir / f"{self.stem()}.json"

    def frames_dir(self) -> Path:
        return self.output_dir / f"{self.stem()}_debug"


# --- the numbers of a run: one rule each, for synthesize, sweep, reproduce and demo ------------------


def check_value(key: str, value: Any, label: str | None = None) -> None:
    """One setting of a run is in its allowed range, or an InputError naming it (as ``label``) and the range."""
    name = label or f"--{key}"
    if key in ("unit", "unit2", "x", "y", "xy", "seed", "n_iters", "batch"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{name} must be a whole number, got {value!r}")
        if key == "batch" and not 1 <= value <= MAX_BATCH:
            raise InputError(f"{name} must be between 1 and {MAX_BATCH} (runs sharing one pass), got {value}")
        if key == "n_iters" and not 1 <= value <= MAX_ITERS:
            raise InputError(f"{name} must be between 1 and {MAX_ITERS:,}, got {value}")
        if key == "seed" and not 0 <= value < 2**32:
            raise InputError(f"{name} must be in [0, 2**32), got {value}")
        if value < 0:
            raise InputError(f"{name} must be >= 0, got {value}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    if key == "L2" and not 0 < value <= 1:
        raise InputError(f"{name} must be in (0, 1] (the code is multiplied by it each iteration; 1 = no decay), "
                         f"got {value}")
    if key == "start_lr" and not value > 0:
        raise InputError(f"{name} must be > 0, got {value}")
    if key in ("end_lr", "gamma") and value < 0:
        raise InputError(f"{name} must be >= 0, got {value}")


def validate(run: Run) -> None:
    """Every number of ``run`` is in range, before any net is loaded."""
    for key in ("unit", "n_iters", "L2", "start_lr", "end_lr", "seed", "x", "y", "gamma"):
        check_value(key, getattr(run, key))
    if run.unit2 is not None:
        check_value("unit2", run.unit2)
    elif run.gamma != 0:
        raise InputError("--gamma needs --unit2")
    if run.opt_layer not in OPT_LAYERS:
        raise InputError(f"--opt_layer must be one of {', '.join(OPT_LAYERS)}, got {run.opt_layer!r}")


# --- what a run will write ------------------------------------------------------------------------

_FRAME = re.compile(r"\d{3,}\.jpg")


def output_paths(run: Run, receptive_field: bool) -> dict[str, Path]:
    """Every file ``run`` writes, the manifest last."""
    paths = result_files(run.output_dir, run.stem(), receptive_field)
    paths["json"] = run.manifest_path()
    return paths


def check_outputs(run: Run, receptive_field: bool, inputs: list[Path]) -> dict[str, Path]:
    """The folder takes files and every output name is free for a result (or holds an earlier one)."""
    ensure_writable_dir(run.output_dir)
    paths = output_paths(run, receptive_field)
    for path in [*paths.values(), locks.run_lock(run.output_dir, run.stem())]:
        check_destination(path, inputs)
    if run.debug:
        frames = run.frames_dir()
        check_destination(frames, kind="folder")
        if frames.is_dir():
            foreign = [p.name for p in frames.iterdir() if not _FRAME.fullmatch(p.name)]
            if foreign:
                raise InputError(f"{frames} holds files dgn-am did not write there ({foreign[0]}, ...); "
                                 "move them or choose another --output_dir")
    return paths


def model_records(models: Models, with_encoder: bool, target: NetInfo | None = None,
                  generator: NetInfo | None = None) -> dict[str, dict[str, Any]]:
    """What a run's manifest records of its model files (hashes remembered per file version).

    With the loaded nets' descriptions it also says whether a definition lacked ``force_backward``;
    without them (deciding whether a run is finished, before any net loads) only the files are named.
    """
    records: dict[str, dict[str, Any]] = {
        "target": manifest.model_record(models.net_definition, models.net_weights),
        "generator": manifest.model_record(models.generator_definition, models.generator_weights),
    }
    for role, info in (("target", target), ("generator", generator)):
        if info is not None:
            records[role]["force_backward_added"] = info.force_backward_added
    if with_encoder:
        records["encoder"] = manifest.model_record(models.encoder_definition, models.encoder_weights)
    return records


class RunConflict(InputError):
    """The output folder holds a different run under the same file name."""


class RunBusy(InputError):
    """Another process holds the run's lock: it is making that run right now."""


class RunFailed(InputError):
    """A run ended in NaN or Inf: it has no result, and nothing of it was written."""


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
class Outcome:
    paths: dict[str, Path]
    activations: np.ndarray
    iterations: int
    device: str
    receptive_field: tuple[int, int, int, int] | None
    stop: Stop | None = None  # why it ended before n_iters (a zero gradient), if it did


class Session:
    """Checked and loaded nets, reused by every run (a sweep loads them once)."""

    def __init__(self, models: Models) -> None:
        self.models = models
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
        return model_records(self.models, with_encoder, self.net_info, self.gen_info)

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
        bounds = read_bounds(run.bound, self.code_size) if run.bound else None
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
        _check_not_another_run(prepared, overwrite)
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
                _check_not_another_run(p, overwrite)  # another process may have written it meanwhile
                todo.append(k)
            if todo:
                for k, out in zip(todo, self._make([prepared[k] for k in todo], progress), strict=True):
                    results[k] = out
        return results

    def _start(self, p: Prepared) -> np.ndarray:
        if p.rgb is not None:
            return _encode_start(self.encoder(), p.run.opt_layer, p.rgb, self.code_shape).reshape(1, self.code_size)
        return random_code(p.run.seed, (1, self.code_size)).reshape(1, self.code_size)

    def _make(self, ps: list[Prepared], progress: Callable[[Iteration], None] | None) -> list[Outcome | RunFailed]:
        first = ps[0].run
        started = time.perf_counter()
        for p in ps:
            _clear_previous(p)
        start = np.concatenate([self._start(p) for p in ps])

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
        out: list[Outcome | RunFailed] = []
        try:
            with cb.batched_convolution(len(ps), self.models.gpu is not None) as convolution:
                result = optimize(self.generator, target, objective, start, settings, on_iteration)
            seconds = time.perf_counter() - started
            fast = cb.fast_math()
            for b, (p, folder) in enumerate(zip(ps, frames, strict=True)):
                run, stop = p.run, result.stops[b]
                if stop is not None and stop.failed:
                    out.append(RunFailed(f"{run.stem()} failed at iteration {stop.iteration + 1} of {run.n_iters}: "
                                         f"{stop.reason}; no result was written"))
                    continue
                if folder is not None:  # and, as frame n_iters, the saved result itself
                    write_atomic(folder / f"{str(run.n_iters).zfill(3)}.jpg", encode_image(result.image[b], "JPEG"))
                    _replace_folder(folder, run.frames_dir())
                ran = result.iterations if stop is None else stop.iteration + 1
                batch = {"size": len(ps), "position": b, "fast_math": fast, "convolution": convolution}
                out.append(self._write(p, result.code[b : b + 1], result.image[b : b + 1],
                                       result.activations[b, :ran], stop, seconds, batch))
        finally:
            for folder in frames:
                if folder is not None:
                    shutil.rmtree(folder, ignore_errors=True)
        return out

    def _write(self, p: Prepared, code: np.ndarray, image: np.ndarray, activations: np.ndarray, stop: Stop | None,
               seconds: float, batch: dict[str, Any]) -> Outcome:
        """One run's files, then its manifest last."""
        run = p.run
        paths = save_result(run.output_dir, run.stem(), code, image, activations, p.receptive_field)
        stopped = None if stop is None else {"iteration": stop.iteration, "iterations_run": len(activations),
                                             "of": run.n_iters, "reason": stop.reason}
        results = {"outputs": {k: v.name for k, v in paths.items()}, "iterations": len(activations),
                   "final_activation": float(activations[-1]), "receptive_field": p.receptive_field,
                   "stopped_early": stopped}
        paths["json"] = p.paths["json"]
        record = manifest.build(asdict(run), p.models, cb.build_info(), self.device, results, seconds, batch)
        manifest.write(paths["json"], record)
        return Outcome(paths, activations, len(activations), self.device, p.receptive_field, stop)


def batch_key(run: Run) -> tuple:
    """What runs must share to run in one batch: everything but the unit(s), seed, L2, bound values and folder.

    One pass runs one target net to one layer, one generator, and one learning rate per iteration.
    """
    return (run.n_iters, run.start_lr, run.end_lr, run.opt_layer, run.act_layer, run.clip, run.bound is None,
            run.init_file)



def batches(runs: Sequence[Run], size: int) -> list[list[int]]:
    """The positions of ``runs``, in groups of at most ``size`` that can share a pass (``batch_key``).

    A group starts at the first run not yet placed and takes the next compatible ones after it, so with
    ``size`` 1 the order is the runs' own, and a shard's batches hold only that shard's runs.
    """
    placed: set[int] = set()
    out: list[list[int]] = []
    for i, run in enumerate(runs):
        if i in placed:
            continue
        key, group = batch_key(run), [i]
        for j in range(i + 1, len(runs)):
            if len(group) == size:
                break
            if j not in placed and batch_key(runs[j]) == key:
                group.append(j)
        placed.update(group)
        out.append(group)
    return out

def _check_not_another_run(p: Prepared, overwrite: bool) -> None:
    """Refuse to write over a different run that has the same released file name, unless ``overwrite``."""
    json_path = p.paths["json"]
    if overwrite or not json_path.exists():
        return  # no manifest: nothing finished here, so whatever files there are get replaced
    record = manifest.read(json_path)
    diffs = manifest.differences(record, asdict(p.run), p.models)
    if diffs:
        shown = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
        raise RunConflict(f"{json_path} records a different run under the same file name ({shown}); pass "
                         "--overwrite to replace it, or choose another --output_dir")


def _clear_previous(p: Prepared) -> None:
    """Remove what an earlier run under this name left: its manifest first, then its files and temporaries.

    With the manifest gone first, a process killed part-way leaves an unfinished run (no manifest),
    never an old manifest beside new files. Files the earlier run listed that this one does not write
    (a receptive-field crop, the debug frames of a different run) go too, so two runs never mix.
    """
    run, json_path = p.run, p.paths["json"]
    record = manifest.read(json_path)
    json_path.unlink(missing_ok=True)
    ours = {path.name for path in p.paths.values()}
    results = record.get("results") if isinstance(record, dict) else None
    listed = results.get("outputs") if isinstance(results, dict) else None
    old = {v for v in (listed or {}).values() if isinstance(v, str) and "/" not in v and v.startswith(run.stem())}
    for name in old - ours:
        (run.output_dir / name).unlink(missing_ok=True)
    if record is not None and manifest.differences(record, asdict(run), p.models) and run.frames_dir().is_dir():
        _remove_frames(run.frames_dir())
    for name in old | ours:
        for tmp in run.output_dir.glob(f".{_glob_escape(name)}.*.tmp"):  # what a killed write_atomic leaves
            tmp.unlink(missing_ok=True)


def _remove_frames(folder: Path) -> None:
    """Delete the debug frames dgn-am wrote into ``folder``, and the folder once it is empty."""
    for frame in folder.iterdir():
        if _FRAME.fullmatch(frame.name):
            frame.unlink()
    if not any(folder.iterdir()):
        folder.rmdir()


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _replace_folder(new: Path, final: Path) -> None:
    """Put the folder ``new`` at ``final``, removing the frames an earlier run left there."""
    if final.is_dir():
        _remove_frames(final)  # check_outputs refused a folder with anything else in it
    if final.exists():
        raise InputError(f"{final} holds files dgn-am did not write; move them or choose another --output_dir")
    new.rename(final)


def synthesize(models: Models, run: Run, progress: Callable[[Iteration], None] | None = None,
               overwrite: bool = False) -> Outcome:
    """One run in a fresh session: what ``dgn-am synthesize`` does."""
    validate(run)
    inputs = [p for p in [*models.files(bool(run.init_file)), run.bound, run.init_file] if p]
    check_outputs(run, False, inputs)  # the names that do not depend on the nets, before they load
    if run.init_file:
        load_rgb(run.init_file)  # a bad start image fails before the nets load
    outcome = Session(models).run(run, progress, overwrite)
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
