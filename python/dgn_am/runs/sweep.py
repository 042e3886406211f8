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

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..assets.models import downloadable, require
from ..backend import CaffeTarget, batched_convolution
from ..common.errors import InputError
from ..common.files import ensure_writable_dir
from ..core.algorithm import Iteration
from ..core.objectives import PerSample
from ..results import gallery, manifest
from .grid import Plan, Shard
from .run import Run, RunBusy, RunConflict, batches, check_value
from .session import Outcome, Session

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
    from ..core.algorithm import Settings, optimize
    from ..core.codes import random_codes

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
    """The model files (and a released start image or bound file) exist, before anything loads."""
    first = p.jobs[0] if p.jobs else None
    init = next((r.init_file for r in p.jobs if r.init_file), None)
    require(downloadable(p.models, init, first.bound if first else None))


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


def run(p: Plan, shard: Shard | None = None, progress: Callable[[Event], None] | None = None,
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
    shard = shard or Shard()
    check_value("batch", batch)
    check_files(p)
    ensure_writable_dir(p.output_dir)
    mine = shard.take(p.jobs)
    records = manifest.model_records(p.models, any(r.init_file for r in p.jobs))
    done = {r for r in mine if is_finished(r, records)}
    todo = [r for r in mine if r not in done]
    session = Session(p.models, p.labels) if todo else None
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
        summary.gallery = gallery.write(p.output_dir, labels=p.labels)
    return summary
