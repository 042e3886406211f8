"""``dgn-am sweep``: units x seeds x a hyperparameter grid, in one process that loads the nets once.

The grid comes from flags or a TOML file with the same keys (flags win). Its jobs are ordered
deterministically (unit, then seed, n_iters, L2, start_lr, end_lr), so every process that reads the same
settings sees the same list; ``Shard(i, n)`` takes jobs ``i, i + n, i + 2n, ...``, which makes shards
disjoint and together complete. A SLURM job array (``--array=0-(N-1)``) passes
``$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``; a Kubernetes indexed Job passes
``$JOB_COMPLETION_INDEX/<completions>``.

Resuming: every output is written atomically and the JSON manifest last (``manifest``), so a run whose
manifest exists, records the same parameters and the same model files, and whose outputs are present,
is finished and skipped. A run without a manifest is unfinished and is run again (temporaries a killed
process left are removed first); a manifest of a *different* run under the same name is refused before
anything runs, unless ``overwrite``. Shards and concurrent sweeps on one folder take a lock per run, so
no run is made twice; a run another process holds is left to it.

Layout: results go straight into the output folder under the released file names. Those names do not
hold ``end_lr``; when the grid has runs that differ only in it, each end_lr gets its own subfolder
``end_lr_<value>``. The library never prints: ``progress`` receives an ``Event`` per job and iteration.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from difflib import get_close_matches
from itertools import product
from pathlib import Path
from typing import Any

from . import gallery, manifest, paths
from .algorithm import Iteration
from .caffe_backend import CaffeTarget, batched_convolution
from .errors import InputError, read_input
from .objectives import PerSample
from .outputs import ensure_writable_dir
from .synthesize import (
    OPT_LAYERS,
    Models,
    Outcome,
    Run,
    RunBusy,
    RunConflict,
    Session,
    batches,
    check_value,
    model_records,
    validate,
)

#: Keys that take a list; the grid is their product.
GRID_KEYS = ("units", "seeds", "n_iters", "L2", "start_lr", "end_lr")
#: Keys that take one value for the whole sweep.
FIXED_KEYS = ("act_layer", "opt_layer", "xy", "x", "y", "clip", "bound", "init_file", "output_dir",
              "net_definition", "net_weights", "generator_definition", "generator_weights",
              "encoder_definition", "encoder_weights", "gpu")
KEYS = GRID_KEYS + FIXED_KEYS
_PATH_KEYS = {"bound", "init_file", "output_dir", "net_definition", "net_weights", "generator_definition",
              "generator_weights", "encoder_definition", "encoder_weights"}
#: The defaults of ``dgn-am synthesize``; no end_lr means "the run's start_lr".
DEFAULTS: dict[str, Any] = {"seeds": [0], "n_iters": [10], "L2": [1.0], "start_lr": [2.0],
                            "act_layer": "fc8", "opt_layer": "fc6", "xy": 0, "clip": False, "output_dir": "."}
#: The most runs one sweep grid may hold (100 seeds of every ImageNet class). The grid's size is known
#: from its lists' lengths before anything is expanded, so a typo that asks for 10**9 runs is refused
#: at once instead of planned for minutes.
MAX_RUNS = 100_000


# --- settings: flags over a TOML file ---------------------------------------------------------


@dataclass
class Settings:
    """The sweep's raw settings, and where each came from (for error messages that name the source)."""

    values: dict[str, Any]
    origin: dict[str, str] = field(default_factory=dict)

    def name(self, key: str) -> str:
        return self.origin.get(key, f"--{key}")

    def get(self, key: str) -> Any:
        return self.values.get(key, DEFAULTS.get(key))


def _toml() -> Any:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise InputError("--config needs Python 3.11 or newer (tomllib) or the tomli package") from None
    return tomllib


def load_config(path: Path) -> Settings:
    """A TOML sweep file: top-level keys as the flags' names. Relative paths are relative to the file."""
    text = read_input(path, "sweep config")
    try:
        data = _toml().loads(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError
        raise InputError(f"sweep config {path} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key, value in data.items():
        if key not in KEYS:
            close = get_close_matches(key, KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f"; keys are: {', '.join(KEYS)}"
            raise InputError(f"unknown key '{key}' in sweep config {path}{hint}")
        origin[key] = f"'{key}' in {path}"
        if key in _PATH_KEYS:
            if not isinstance(value, str) or not value:
                raise InputError(f"{origin[key]} must be a path (a non-empty string)")
            value = str(Path(path).parent / Path(value).expanduser())
        values[key] = value
    return Settings(values, origin)


def settings(flags: dict[str, Any], config: Path | None = None) -> Settings:
    """The config file's values with every flag that was given (not None) on top."""
    merged = load_config(config) if config is not None else Settings({})
    for key, value in flags.items():
        if value is not None:
            if key not in KEYS:
                raise ValueError(f"not a sweep key: {key}")
            merged.values[key] = value
            merged.origin[key] = f"--{key}"
    return merged


# --- parsing lists, ranges and shards ----------------------------------------------------------


def _items(spec: Any, what: str) -> list[Any]:
    """A flag's comma list, or a TOML scalar or list (whose strings may hold comma lists too)."""
    raw = spec if isinstance(spec, list) else [spec]
    items: list[Any] = []
    for item in raw:
        if isinstance(item, str):
            for token in item.split(","):
                if not token.strip():
                    raise InputError(f"{what}: empty item in '{item}'")
                items.append(token.strip())
        else:
            items.append(item)
    if not items:
        raise InputError(f"{what} is empty")
    return items


def parse_ints(spec: Any, what: str) -> list[int]:
    """Whole numbers >= 0 with inclusive ranges, e.g. ``"0-9,643,700-799"``; duplicates dropped, order kept."""
    out: list[int] = []
    for item in _items(spec, what):
        if isinstance(item, int) and not isinstance(item, bool):
            if item < 0:
                raise InputError(f"{what}: {item} is negative")
            out.append(item)
            continue
        m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", item) if isinstance(item, str) else None
        if m is None:
            raise InputError(f"{what}: {item!r} is not a whole number >= 0 or a range like 0-9")
        lo = int(m[1])
        hi = int(m[2]) if m[2] is not None else lo
        if hi < lo:
            raise InputError(f"{what}: range '{item}' runs backwards (write {hi}-{lo})")
        if hi - lo >= MAX_RUNS:
            raise InputError(f"{what}: range '{item}' holds {hi - lo + 1:,} values, more than a sweep's "
                             f"{MAX_RUNS:,} runs")
        out.extend(range(lo, hi + 1))
    return list(dict.fromkeys(out))


def parse_floats(spec: Any, what: str) -> list[float]:
    """Finite numbers, e.g. ``"8,2"`` or a TOML list; duplicates dropped, order kept."""
    out: list[float] = []
    for item in _items(spec, what):
        try:
            if isinstance(item, bool):
                raise ValueError
            value = float(item)
        except (TypeError, ValueError):
            raise InputError(f"{what}: {item!r} is not a number") from None
        if not math.isfinite(value):
            raise InputError(f"{what}: {item!r} is not a finite number")
        out.append(value)
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Shard:
    """Part ``index`` (0-based) of ``count``: jobs index, index + count, ..."""

    index: int = 0
    count: int = 1

    def take(self, jobs: list[Run]) -> list[Run]:
        return jobs[self.index :: self.count]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"i/N"`` with 0 <= i < N, as SLURM array task ids and Kubernetes completion indexes count."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if m is None:
        raise InputError(f"--shard '{text}' is not I/N (e.g. 0/4; I counts from 0)")
    index, count = int(m[1]), int(m[2])
    if count < 1 or index >= count:
        raise InputError(f"--shard {text}: need 0 <= I < N (I counts from 0, so the last of {count} is "
                         f"{max(count - 1, 0)}/{count})")
    return Shard(index, count)


# --- the plan: every job of the grid, checked without the nets ---------------------------------


@dataclass
class Plan:
    jobs: list[Run]  # the whole grid, in order; a shard takes its part
    models: Models
    output_dir: Path


def _int(s: Settings, key: str, minimum: int = 0) -> int | None:
    value = s.get(key)
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"\d+", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{s.name(key)} must be a whole number >= {minimum}, got {value!r}")
    return value


def _str(s: Settings, key: str) -> str | None:
    value = s.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, (str, Path)):
        raise InputError(f"{s.name(key)} must be a string, got {value!r}")
    return str(value)


def _path(s: Settings, key: str) -> Path | None:
    value = _str(s, key)
    return Path(value).expanduser().absolute() if value else None


def models_of(s: Settings) -> Models:
    """The nets, defaulting to CaffeNet and the generator of the opt layer under nets/."""
    opt = s.get("opt_layer")
    return Models(
        net_definition=_path(s, "net_definition") or paths.caffenet_definition(),
        net_weights=_path(s, "net_weights") or paths.caffenet_weights(),
        generator_definition=_path(s, "generator_definition") or paths.generator_definition(opt),
        generator_weights=_path(s, "generator_weights") or paths.generator_weights(opt),
        encoder_definition=_path(s, "encoder_definition") or paths.caffenet_definition(),
        encoder_weights=_path(s, "encoder_weights") or paths.caffenet_weights(),
        gpu=_int(s, "gpu"),
    )


def plan(s: Settings) -> Plan:
    """Expand and check the grid: every value, every name unique. Nothing is loaded or written."""
    if s.get("units") is None:
        raise InputError("no units given: pass --units (e.g. 0-9,643) or set 'units' in the --config file")
    lists: dict[str, list[Any]] = {
        "units": parse_ints(s.get("units"), s.name("units")),
        "seeds": parse_ints(s.get("seeds"), s.name("seeds")),
        "n_iters": parse_ints(s.get("n_iters"), s.name("n_iters")),
        "L2": parse_floats(s.get("L2"), s.name("L2")),
        "start_lr": parse_floats(s.get("start_lr"), s.name("start_lr")),
        "end_lr": [None] if s.get("end_lr") is None else parse_floats(s.get("end_lr"), s.name("end_lr")),
    }
    size = math.prod(len(v) for v in lists.values())
    if size > MAX_RUNS:
        raise InputError(f"the grid holds {size:,} runs ({' x '.join(str(len(v)) for v in lists.values())} "
                         f"{', '.join(lists)}), more than the {MAX_RUNS:,} one sweep may run; split it")
    for key, values in lists.items():
        for value in values:
            if value is not None:
                check_value("unit" if key == "units" else "seed" if key == "seeds" else key, value, s.name(key))

    opt_layer = _str(s, "opt_layer")
    if opt_layer not in OPT_LAYERS:
        raise InputError(f"{s.name('opt_layer')} must be one of {', '.join(OPT_LAYERS)}, got {opt_layer!r}")
    clip = s.get("clip")
    if clip not in (0, 1):  # True and False compare equal to 1 and 0
        raise InputError(f"{s.name('clip')} must be 0 or 1 (or true/false), got {clip!r}")
    xy = _int(s, "xy")
    x, y = _int(s, "x"), _int(s, "y")
    output_dir = Path(_str(s, "output_dir") or ".")
    base = Run(unit=0, x=xy if x is None else x, y=xy if y is None else y, opt_layer=opt_layer,
               act_layer=_str(s, "act_layer") or "fc8", clip=bool(clip), init_file=_path(s, "init_file"),
               bound=_path(s, "bound"), output_dir=output_dir)
    validate(base)

    grid = product(*lists.values())
    jobs = list(dict.fromkeys(  # no end_lr is the start_lr, which can repeat another run of the grid
        replace(base, unit=u, seed=seed, n_iters=n, L2=l2, start_lr=lr0, end_lr=lr0 if lr1 is None else lr1)
        for u, seed, n, l2, lr0, lr1 in grid
    ))
    if len({r.stem() for r in jobs}) < len(jobs):  # runs that differ only in end_lr: one folder per end_lr
        jobs = [replace(r, output_dir=output_dir / f"end_lr_{r.end_lr!r}") for r in jobs]
    if len({(r.output_dir, r.stem()) for r in jobs}) < len(jobs):
        raise InputError("two runs of the grid would write the same files")  # cannot happen; never overwrite
    return Plan(jobs, models_of(s), output_dir)


# --- finished runs ------------------------------------------------------------------------------


def is_finished(run: Run, models: dict[str, dict[str, str]]) -> bool:
    """Has ``run`` been done, with these settings and model files, and are its outputs still there?"""
    return manifest.finished(run.manifest_path(), asdict(run), models)


# --- running --------------------------------------------------------------------------------------


@dataclass
class Event:
    """What ``progress`` sees: a job skipped, started, finished, failed or busy, or one iteration of it."""

    kind: str  # "skipped" | "started" | "iteration" | "finished" | "failed" | "busy"
    job: int  # position in this shard's jobs, from 0
    jobs: int  # this shard's number of jobs
    run: Run
    iteration: Iteration | None = None
    outcome: Outcome | None = None
    error: str | None = None  # for "failed": why (a NaN at some iteration)


@dataclass
class Summary:
    grid: int  # jobs in the whole grid
    shard: Shard
    ran: list[Run]
    skipped: list[Run]  # already finished (by an earlier sweep, or by another process while this one ran)
    replaced: list[Run]  # ran over a manifest of another run (only with overwrite)
    gallery: Path
    busy: list[Run] = field(default_factory=list)  # another process was making them: left to it
    failed: list[tuple[Run, str]] = field(default_factory=list)  # ended in NaN or Inf: no result written
    saving: Saving | None = None  # what batching would have saved (``estimate``)


@dataclass(frozen=True)
class Saving:
    """Seconds per image-iteration alone and in a batch of ``batch``, timed on the sweep's own nets."""

    batch: int
    alone: float
    batched: float
    image_iterations: int  # what this sweep ran: its runs' iterations, summed

    def seconds(self, batched: bool) -> float:
        return self.image_iterations * (self.batched if batched else self.alone)


#: Image-iterations timed per measurement of ``estimate`` (after one warm-up iteration).
ESTIMATE_ITERATIONS = 2


def estimate(session: Session, runs: list[Run], batch: int = 16) -> Saving | None:
    """Time a few iterations alone and in a batch on ``session``'s nets, to tell what ``--batch`` would save.

    Nothing is written; the codes are random. None when no two of ``runs`` could share a pass.
    """
    groups = batches(runs, batch)
    largest = max((len(g) for g in groups), default=0)
    if largest < 2:
        return None
    from .algorithm import Settings, optimize
    from .codes import random_codes

    size = min(batch, largest)
    first = runs[groups[0][0]]
    objective, _, _, end, _ = session.check_inputs(first)
    target = CaffeTarget(session.net, first.act_layer, end)
    per: list[float] = []
    for b in (1, size):
        stamps: list[float] = []
        starts = random_codes(list(range(b)), session.code_size)
        with batched_convolution(b, session.models.gpu is not None):  # as a batched sweep would run
            optimize(session.generator, target, PerSample([objective] * b), starts,
                     Settings(ESTIMATE_ITERATIONS + 1, first.start_lr, first.end_lr),
                     lambda it, stamps=stamps: stamps.append(time.perf_counter()))
        per.append((stamps[-1] - stamps[0]) / ESTIMATE_ITERATIONS / b)
    return Saving(size, per[0], per[1], sum(r.n_iters for r in runs))


def check_files(p: Plan) -> None:
    """The model files (and a released bound file) exist, before anything loads."""
    from .download import describe_missing, missing

    m = p.models
    needed = m.files(any(r.init_file for r in p.jobs))
    bound = p.jobs[0].bound if p.jobs else None
    if bound and paths.is_under_nets(bound):
        needed.append(bound)  # a released act_range file that `dgn-am download` would fetch
    if missing(needed):
        raise InputError(describe_missing(missing(needed)))


def _check_all(session: Session, p: Plan, todo: list[Run], overwrite: bool) -> list[Run]:
    """Every job's inputs, and this shard's outputs, before the first run writes; returns the jobs it replaces."""
    for job in p.jobs:
        session.check_inputs(job)  # remembered per unit, position and input files: cheap when repeated
    conflicts: list[str] = []
    replaced: list[Run] = []
    for job in todo:
        try:
            prepared = session.check(job, overwrite=overwrite)
        except RunConflict as exc:
            conflicts.append(str(exc))
            continue
        record = manifest.read(job.manifest_path())
        if record is not None and manifest.differences(record, asdict(job), prepared.models):
            replaced.append(job)
    if conflicts:
        more = f" ({len(conflicts) - 1} more runs of this sweep too)" if len(conflicts) > 1 else ""
        raise InputError(conflicts[0] + more)
    return replaced


def run(p: Plan, shard: Shard = Shard(), progress: Callable[[Event], None] | None = None,
        overwrite: bool = False, batch: int = 1, checked: Callable[[], bool] | None = None,
        write_gallery: bool = True, estimate_saving: bool = False) -> Summary:
    """Run this shard's unfinished jobs in one session, then rewrite the gallery from what is on disk.

    Every job of the whole grid is checked against the nets before the first one writes anything, so a
    bad unit fails every shard the same way; so is every output of this shard (a different run under
    the same name is refused unless ``overwrite``). When nothing is left to do, the nets are not even
    loaded. A run that ends in NaN is reported and the sweep goes on with the others. ``batch``: up to
    that many compatible runs share each forward/backward pass (``Session.run_batch``).

    ``checked`` is called once everything is checked and before anything is written; if it returns
    False nothing is run (``workers`` uses it so that no worker writes until every worker's checks
    passed). ``write_gallery``: rewrite the gallery at the end (a worker leaves it to its parent).
    ``estimate_saving``: at batch 1, time what batching would save (``estimate``, a few seconds).
    """
    check_value("batch", batch)
    check_files(p)
    ensure_writable_dir(p.output_dir)
    mine = shard.take(p.jobs)
    records = model_records(p.models, any(r.init_file for r in p.jobs))
    done = {r for r in mine if is_finished(r, records)}
    todo = [r for r in mine if r not in done]
    session = Session(p.models) if todo else None
    replaced = _check_all(session, p, todo, overwrite) if session is not None else []
    if checked is not None and not checked():
        return Summary(len(p.jobs), shard, [], [], replaced, p.output_dir / gallery.INDEX)
    saving = estimate(session, todo) if estimate_saving and batch == 1 and session is not None else None
    position = {job: k for k, job in enumerate(mine)}

    def emit(kind: str, job: Run, **kw: Any) -> None:
        if progress is not None:
            progress(Event(kind, position[job], len(mine), job, **kw))

    summary = Summary(len(p.jobs), shard, [], [], replaced, p.output_dir / gallery.INDEX, saving=saving)
    for job in mine:
        if job in done:
            summary.skipped.append(job)
            emit("skipped", job)
    for group in ([todo[k] for k in ks] for ks in batches(todo, batch)):
        assert session is not None
        for job in group:
            emit("started", job)
        lead = group[0]
        results = session.run_batch(group, lambda it, lead=lead: emit("iteration", lead, iteration=it),
                                    overwrite=overwrite, resume=True)
        for job, result in zip(group, results, strict=True):
            if isinstance(result, RunBusy):
                summary.busy.append(job)
                emit("busy", job)
            elif isinstance(result, InputError):  # RunFailed: NaN or Inf, nothing written
                summary.failed.append((job, str(result)))
                emit("failed", job, error=str(result))
            elif result is None:  # another process finished it after this one looked
                summary.skipped.append(job)
                emit("skipped", job)
            else:
                summary.ran.append(job)
                emit("finished", job, outcome=result)
    if write_gallery:
        summary.gallery = gallery.write(p.output_dir)
    return summary
