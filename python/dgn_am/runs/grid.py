"""The sweep's grid: flags over a TOML file, lists and ranges, shards, and the plan of every job.

Everything here is checked without the nets and without writing anything: ``plan`` expands the grid
into ``Run``s in a fixed order (unit, then seed, n_iters, L2, start_lr, end_lr), so every process that
reads the same settings sees the same list, and ``Shard(i, n)`` takes jobs ``i, i + n, ...``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from difflib import get_close_matches
from itertools import product
from pathlib import Path
from typing import Any

from ..assets.labels import read_labels
from ..assets.models import MODEL_ROLES, Models, default_models
from ..common.errors import InputError, read_input
from .run import OPT_LAYERS, Run, check_value, validate

#: Keys that take a list; the grid is their product.
GRID_KEYS = ("units", "pairs", "gamma", "seeds", "n_iters", "L2", "start_lr", "end_lr")
#: Keys that take one value for the whole sweep.
FIXED_KEYS = ("act_layer", "opt_layer", "xy", "x", "y", "clip", "bound", "init_file", "output_dir",
              "net_definition", "net_weights", "generator_definition", "generator_weights",
              "encoder_definition", "encoder_weights", "gpu", "labels")
KEYS = GRID_KEYS + FIXED_KEYS
_PATH_KEYS = {"bound", "init_file", "labels", "output_dir", "net_definition", "net_weights", "generator_definition",
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


def parse_pairs(spec: Any, what: str) -> list[tuple[int, int]]:
    """Two units driven at once (S8, Eq. 2), e.g. ``"470:1,470:122"`` or a TOML list of such strings or of
    ``[470, 1]``; duplicates dropped, order kept."""
    out: list[tuple[int, int]] = []
    for item in _items(spec, what):
        if isinstance(item, list) and len(item) == 2 and all(isinstance(u, int) and not isinstance(u, bool)
                                                              and u >= 0 for u in item):
            out.append((item[0], item[1]))
            continue
        m = re.fullmatch(r"(\d+)\s*:\s*(\d+)", item) if isinstance(item, str) else None
        if m is None:
            raise InputError(f"{what}: {item!r} is not a pair of units like 470:1")
        out.append((int(m[1]), int(m[2])))
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
    labels: dict[int, str] | None = None  # names of the units (``labels``: a file, one name per line)


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
    return default_models(s.get("opt_layer"), _int(s, "gpu"), **{role: _path(s, role) for role in MODEL_ROLES})


def plan(s: Settings) -> Plan:
    """Expand and check the grid: every value, every name unique. Nothing is loaded or written."""
    if s.get("units") is None and s.get("pairs") is None:
        raise InputError("no units given: pass --units (e.g. 0-9,643) or --pairs (e.g. 470:1), or set 'units' "
                         "or 'pairs' in the --config file")
    if s.get("gamma") is not None and s.get("pairs") is None:
        raise InputError(f"{s.name('gamma')} needs --pairs (it weighs the two units' difference)")
    units = [] if s.get("units") is None else parse_ints(s.get("units"), s.name("units"))
    pairs = [] if s.get("pairs") is None else parse_pairs(s.get("pairs"), s.name("pairs"))
    gammas = [0.0] if s.get("gamma") is None else parse_floats(s.get("gamma"), s.name("gamma"))
    # what each run drives: a unit alone, or a pair with one gamma
    targets = [(u, None, 0.0) for u in units] + [(a, b, g) for a, b in pairs for g in gammas]
    lists: dict[str, list[Any]] = {
        "targets": targets,
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
    for u in units:
        check_value("unit", u, s.name("units"))
    for a, b in pairs:
        check_value("unit", a, s.name("pairs"))
        check_value("unit2", b, s.name("pairs"))
    for g in gammas:
        check_value("gamma", g, s.name("gamma"))
    for key, values in list(lists.items())[1:]:
        for value in values:
            if value is not None:
                check_value("seed" if key == "seeds" else key, value, s.name(key))

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
        replace(base, unit=u, unit2=u2, gamma=g, seed=seed, n_iters=n, L2=l2, start_lr=lr0,
                end_lr=lr0 if lr1 is None else lr1)
        for (u, u2, g), seed, n, l2, lr0, lr1 in grid
    ))
    if len({r.stem() for r in jobs}) < len(jobs):  # runs that differ only in end_lr: one folder per end_lr
        jobs = [replace(r, output_dir=output_dir / f"end_lr_{r.end_lr!r}") for r in jobs]
    if len({(r.output_dir, r.stem()) for r in jobs}) < len(jobs):
        raise InputError("two runs of the grid would write the same files")  # cannot happen; never overwrite
    labels_file = _path(s, "labels")
    return Plan(jobs, models_of(s), output_dir, read_labels(labels_file) if labels_file else None)
