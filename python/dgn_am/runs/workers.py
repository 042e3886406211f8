"""``dgn-am sweep --jobs N``: one shard's runs shared by N worker processes on one machine.

Why processes rather than one process's BLAS threads: much of an iteration is single-threaded (Python,
NumPy steps, Caffe's loops between its matrix products), so N one-thread workers keep N cores busy
where one N-thread process leaves them waiting (README: threads or processes, for the measurement).

Each worker is a fresh interpreter (multiprocessing's ``spawn``: no Caffe state is forked) whose
OpenBLAS and OpenMP use its share of the cores. Worker ``j`` runs the sub-shard ``index + j * count``
of ``count * N``, so together they run exactly the shard's runs, each run under its own lock as
always. No worker writes until every worker's checks have passed (a bad unit fails them all the same
way, before any file); the parent forwards their progress and rewrites the gallery at the end.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue as queues
import signal
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from ..common.errors import InputError
from ..results import gallery
from . import grid, sweep

#: The most worker processes one machine is asked to run (more than its cores only slows it).
MAX_JOBS = 256


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set variables for the children started in the block (spawned children copy os.environ)."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _light(event: sweep.Event) -> sweep.Event:
    """An event without its images, which the parent's progress never shows (600 kB per sample)."""
    it = event.iteration
    if it is None:
        return event
    empty = np.empty(0, dtype=np.float32)
    return replace(event, iteration=replace(it, image=empty, stepped=empty))


def _worker(plan: grid.Plan, part: grid.Shard, overwrite: bool, batch: int, messages: Any, go: Any,
            abort: Any, j: int) -> None:
    def checked() -> bool:
        messages.put(("ready", j, None))
        go.wait()
        return not abort.is_set()

    try:
        summary = sweep.run(plan, part, lambda ev: messages.put(("event", j, _light(ev))), overwrite, batch,
                            checked=checked, write_gallery=False)
        messages.put(("done", j, summary))
    except InputError as exc:
        messages.put(("error", j, str(exc)))
    except KeyboardInterrupt:
        messages.put(("error", j, "interrupted"))


def run(p: grid.Plan, shard: grid.Shard, jobs: int, progress: Callable[[sweep.Event], None] | None = None,
        overwrite: bool = False, batch: int = 1, threads: int | None = None) -> sweep.Summary:
    """``sweep.run`` over ``jobs`` worker processes of ``threads`` BLAS threads each (default: cores / jobs)."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise InputError(f"--jobs must be a whole number between 1 and {MAX_JOBS}, got {jobs!r}")
    sweep.check_files(p)  # the cheap refusals once, here, before any worker starts
    ctx = mp.get_context("spawn")
    messages, go, abort = ctx.Queue(), ctx.Event(), ctx.Event()
    per = str(threads or max(1, (os.cpu_count() or 1) // jobs))
    parts = [grid.Shard(shard.index + j * shard.count, shard.count * jobs) for j in range(jobs)]
    with _environment(OPENBLAS_NUM_THREADS=per, OMP_NUM_THREADS=per):
        procs = [ctx.Process(target=_worker, args=(p, part, overwrite, batch, messages, go, abort, j))
                 for j, part in enumerate(parts)]
        for proc in procs:
            proc.start()
    total = len(shard.take(p.jobs))
    ready: set[int] = set()
    summaries: dict[int, sweep.Summary] = {}
    errors: dict[int, str] = {}
    try:
        while len(summaries) + len(errors) < jobs:
            try:
                kind, j, payload = messages.get(timeout=0.5)
            except queues.Empty:
                for j, proc in enumerate(procs):
                    if proc.exitcode is not None and j not in summaries and j not in errors:
                        errors[j] = f"worker {j} of {jobs} died (exit code {proc.exitcode})"
                        abort.set()
                        go.set()
                continue
            if kind == "ready":
                ready.add(j)
                if len(ready) == jobs:
                    go.set()
            elif kind == "event":
                if progress is not None:  # positions in this shard: worker j's k-th job is job j + k * jobs
                    progress(replace(payload, job=j + payload.job * jobs, jobs=total))
            elif kind == "done":
                summaries[j] = payload
            else:
                errors[j] = payload
                abort.set()
                go.set()
    except KeyboardInterrupt:
        abort.set()
        go.set()
        for proc in procs:
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGINT)  # each worker unwinds: no temporaries, no half-made run
        raise
    finally:
        for proc in procs:
            proc.join()
    if errors:
        raise InputError(errors[min(errors)])
    merged = sweep.Summary(len(p.jobs), shard, [], [], [], p.output_dir / gallery.INDEX)
    for j in range(jobs):
        s = summaries[j]
        merged.ran += s.ran
        merged.skipped += s.skipped
        merged.replaced += s.replaced
        merged.busy += s.busy
        merged.failed += s.failed
    merged.gallery = gallery.write(p.output_dir, labels=p.labels)
    return merged
