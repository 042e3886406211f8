"""``dgn-am sweep``: units x seeds x a hyperparameter grid, in one process that loads the nets once.

The grid comes from flags or a TOML file with the same keys (flags win). Its jobs are ordered
deterministically (unit, then seed, n_iters, L2, start_lr, end_lr), so every process that reads the same
settings sees the same list; ``Shard(i, n)`` takes jobs ``i, i + n, i + 2n, ...``, which makes shards
disjoint and together complete. A SLURM job array (``--array=0-(N-1)``) passes
``$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``; a Kubernetes indexed Job passes
``$JOB_COMPLETION_INDEX/<completions>``.

Resuming: every output is written atomically and the JSON manifest last (``manifest``), so a run whose
manifest exists, records the same parameters and the same model files, and whose outputs are present,
is finished and skipped. Anything else is run again and its files replaced; temporaries a killed
process left behind are removed first.

Layout: results go straight into the output folder under the released file names. Those names do not
hold ``end_lr``; when the grid has runs that differ only in it, each end_lr gets its own subfolder
``end_lr_<value>``. The library never prints: ``progress`` receives an ``Event`` per job and iteration.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from difflib import get_close_matches
from itertools import product
from pathlib import Path
from typing import Any

from . import gallery, manifest, paths
from .algorithm import Iteration
from .errors import InputError, read_input
from .outputs import ensure_writable_dir
from .synthesize import Models, Outcome, Run, Session

#: Keys that take a list; the grid is their product.
GRID_KEYS = ("units", "seeds", "n_iters", "L2", "start_lr", "end_lr")
#: Keys that take one value for the whole sweep.
FIXED_KEYS = ("act_layer", "opt_layer", "xy", "x", "y", "clip", "bound", "init_file", "output_dir",
              "net_definition", "net_weights", "generator_definition", "generator_weights",
              "encoder_definition", "encoder_weights", "gpu")
KEYS = GRID_KEYS + FIXED_KEYS
_PATH_KEYS = {"bound", "init_file", "output_dir", "net_definition", "net_weights", "generator_definition",
              "generator_weights", "encoder_definition", "encoder_weights"}
#: The defaults of ``dgn-am synthesize``; an end_lr below 0 means "the run's start_lr".
DEFAULTS: dict[str, Any] = {"seeds": [0], "n_iters": [10], "L2": [1.0], "start_lr": [2.0], "end_lr": [-1.0],
                            "act_layer": "fc8", "opt_layer": "fc6", "xy": 0, "clip": False, "output_dir": "."}
OPT_LAYERS = ("fc6", "fc7", "pool5")
_MAX_RANGE = 1_000_000  # a typo like 0-99999999 would otherwise hang expanding it


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
        if hi - lo >= _MAX_RANGE:
            raise InputError(f"{what}: range '{item}' is too large")
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
    units = parse_ints(s.get("units"), s.name("units"))
    seeds = parse_ints(s.get("seeds"), s.name("seeds"))
    if max(seeds) >= 2**32:
        raise InputError(f"{s.name('seeds')}: seeds must be below 2**32, got {max(seeds)}")
    n_iters = parse_ints(s.get("n_iters"), s.name("n_iters"))
    if min(n_iters) < 1:
        raise InputError(f"{s.name('n_iters')} must be >= 1, got {min(n_iters)}")
    l2s = parse_floats(s.get("L2"), s.name("L2"))
    if min(l2s) < 0:
        raise InputError(f"{s.name('L2')} must be >= 0, got {min(l2s)}")
    start_lrs = parse_floats(s.get("start_lr"), s.name("start_lr"))
    end_lrs = parse_floats(s.get("end_lr"), s.name("end_lr"))

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

    grid = product(units, seeds, n_iters, l2s, start_lrs, end_lrs)
    jobs = list(dict.fromkeys(  # an end_lr < 0 can repeat another run of the grid
        replace(base, unit=u, seed=seed, n_iters=n, L2=l2, start_lr=lr0, end_lr=lr0 if lr1 < 0 else lr1)
        for u, seed, n, l2, lr0, lr1 in grid
    ))
    if len({r.stem() for r in jobs}) < len(jobs):  # runs that differ only in end_lr: one folder per end_lr
        jobs = [replace(r, output_dir=output_dir / f"end_lr_{r.end_lr!r}") for r in jobs]
    if len({(r.output_dir, r.stem()) for r in jobs}) < len(jobs):
        raise InputError("two runs of the grid would write the same files")  # cannot happen; never overwrite
    return Plan(jobs, models_of(s), output_dir)


# --- finished runs ------------------------------------------------------------------------------


def model_records(models: Models, with_encoder: bool) -> dict[str, dict[str, str]]:
    """What a run's manifest records of its model files (as ``Session.run`` writes it)."""
    records = {"target": manifest.model_record(models.net_definition, models.net_weights),
               "generator": manifest.model_record(models.generator_definition, models.generator_weights)}
    if with_encoder:
        records["encoder"] = manifest.model_record(models.encoder_definition, models.encoder_weights)
    return records


def _comparable_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    # The folder is where the manifest was found; it may be named differently from another working directory.
    return {k: v for k, v in parameters.items() if k != "output_dir"}


def _hashes(records: Any) -> dict[str, tuple[Any, Any]] | None:
    if not isinstance(records, dict) or not all(isinstance(v, dict) for v in records.values()):
        return None
    return {k: (v.get("definition_sha256"), v.get("weights_sha256")) for k, v in records.items()}


def manifest_path(run: Run) -> Path:
    return run.output_dir / f"{run.stem()}.json"


def _same_settings(record: Any, run: Run, models: dict[str, dict[str, str]]) -> bool:
    if not isinstance(record, dict) or not isinstance(record.get("parameters"), dict):
        return False
    expected = json.loads(json.dumps(asdict(run), default=str))
    return (_comparable_parameters(record["parameters"]) == _comparable_parameters(expected)
            and _hashes(record.get("models")) == _hashes(models))


def is_finished(run: Run, models: dict[str, dict[str, str]]) -> bool:
    """Has ``run`` been done, with these settings and model files, and are its outputs still there?"""
    record = manifest.read(manifest_path(run))
    if not _same_settings(record, run, models):
        return False
    results = record.get("results")
    outputs = results.get("outputs") if isinstance(results, dict) else None
    if not isinstance(outputs, dict) or "png" not in outputs:
        return False
    return all(isinstance(name, str) and (run.output_dir / name).is_file() for name in outputs.values())


def made_otherwise(run: Run, models: dict[str, dict[str, str]]) -> bool:
    """Does ``run``'s manifest record a run with other settings or model files (which redoing it replaces)?"""
    record = manifest.read(manifest_path(run))
    return record is not None and not _same_settings(record, run, models)


def _remove_temporaries(run: Run) -> None:
    """Temporaries of ``run``'s files that a killed process left (write_atomic names them ``.NAME.*.tmp``)."""
    stem = run.stem()
    for name in (f"{stem}.jpg", f"{stem}.png", f"{stem}.npz", f"{stem}_rf.png", f"{stem}.json"):
        for tmp in run.output_dir.glob(f".{_glob_escape(name)}.*.tmp"):
            tmp.unlink(missing_ok=True)


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


# --- running --------------------------------------------------------------------------------------


@dataclass
class Event:
    """What ``progress`` sees: a job skipped, started or finished, or one iteration of it."""

    kind: str  # "skipped" | "started" | "iteration" | "finished"
    job: int  # position in this shard's jobs, from 0
    jobs: int  # this shard's number of jobs
    run: Run
    iteration: Iteration | None = None
    outcome: Outcome | None = None


@dataclass
class Summary:
    grid: int  # jobs in the whole grid
    shard: Shard
    ran: list[Run]
    skipped: list[Run]
    replaced: list[Run]  # ran over a manifest made with other settings or model files
    gallery: Path


def check_files(p: Plan) -> None:
    """The model files (and a released bound file) exist, before anything loads."""
    from .download import describe_missing

    m = p.models
    needed = [m.net_definition, m.net_weights, m.generator_definition, m.generator_weights]
    with_encoder = any(r.init_file for r in p.jobs)
    if with_encoder:
        needed += [m.encoder_definition, m.encoder_weights]
    bound = p.jobs[0].bound if p.jobs else None
    if bound and paths.nets_dir().absolute() in bound.parents:
        needed.append(bound)  # a released act_range file that `dgn-am download` would fetch
    missing = [f for f in dict.fromkeys(needed) if not f.exists()]
    if missing:
        raise InputError(describe_missing(missing))


def run(p: Plan, shard: Shard = Shard(), progress: Callable[[Event], None] | None = None) -> Summary:
    """Run this shard's unfinished jobs in one session, then rewrite the gallery from what is on disk.

    Every job of the whole grid is checked against the nets before the first one writes anything, so a
    bad unit fails every shard the same way. When nothing is left to do, the nets are not even loaded.
    """
    check_files(p)
    ensure_writable_dir(p.output_dir)
    mine = shard.take(p.jobs)
    records = model_records(p.models, any(r.init_file for r in p.jobs))
    done = {r for r in mine if is_finished(r, records)}
    session = None
    if len(done) < len(mine):
        session = Session(p.models)
        checked: set[Run] = set()
        for job in p.jobs:
            # Session.check looks at the unit, its position, the layer and the input files only.
            key = replace(job, seed=0, n_iters=1, L2=1.0, start_lr=1.0, end_lr=1.0, output_dir=Path("."))
            if key not in checked:
                session.check(job)
                checked.add(key)

    def emit(event: Event) -> None:
        if progress is not None:
            progress(event)

    ran: list[Run] = []
    skipped: list[Run] = []
    replaced: list[Run] = []
    for k, job in enumerate(mine):
        if job in done:
            skipped.append(job)
            emit(Event("skipped", k, len(mine), job))
            continue
        assert session is not None
        if made_otherwise(job, records):
            replaced.append(job)
        _remove_temporaries(job)
        emit(Event("started", k, len(mine), job))
        outcome = session.run(job, lambda it, k=k, job=job: emit(Event("iteration", k, len(mine), job, it)))
        ran.append(job)
        emit(Event("finished", k, len(mine), job, outcome=outcome))
    return Summary(len(p.jobs), shard, ran, skipped, replaced, gallery.write(p.output_dir))
