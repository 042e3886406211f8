"""One run of DGN-AM as data: its settings, the rules its numbers obey, and the files it will write.

A ``Run`` is act_max.py's command line (a unit, its schedule, a start, an output folder). The rules
here are the one place each setting is checked (``check_value``, ``validate``), for synthesize, sweep,
reproduce and demo alike, and the one place that says which runs may share a batch (``batch_key``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..common import locks, paths
from ..common.errors import InputError
from ..common.files import check_destination, ensure_writable_dir
from ..results.outputs import result_files, result_stem

#: The code layers a generator of the release inverts (and an encoder blob a start image goes to).
OPT_LAYERS = paths.CODE_LAYERS
#: Far more iterations than any published run (200); a typo such as 10**12 would run for centuries.
MAX_ITERS = 100_000
#: The most runs one forward/backward pass may hold; past a few dozen a CPU gains nothing (scripts/benchmark.py).
MAX_BATCH = 1024


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

#: A frame of a --debug run: ``NNN.jpg`` (at least three digits).
FRAME = re.compile(r"\d{3,}\.jpg")


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
            foreign = [p.name for p in frames.iterdir() if not FRAME.fullmatch(p.name)]
            if foreign:
                raise InputError(f"{frames} holds files dgn-am did not write there ({foreign[0]}, ...); "
                                 "move them or choose another --output_dir")
    return paths


class RunConflict(InputError):
    """The output folder holds a different run under the same file name."""


class RunBusy(InputError):
    """Another process holds the run's lock: it is making that run right now."""


class RunFailed(InputError):
    """A run ended in NaN or Inf: it has no result, and nothing of it was written."""


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
