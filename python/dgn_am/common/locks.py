"""Locks between dgn-am processes that share an output folder (sweep shards, SLURM array tasks).

A lock is an advisory ``flock`` on a hidden file beside the outputs. The kernel drops it when its
process dies, however it dies (SIGKILL included), so a lock is never stale: a lock file left behind
by a killed process is simply taken by the next one. ``flock`` works on local file systems and on
NFS (Linux maps it to byte-range locks there).

The lock file is removed by its holder before it lets go; a process that opened the old file just
before it was removed notices that the path no longer names the file it locked, and tries again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError


class Busy(Exception):
    """Another process holds the lock."""


def _acquire(path: Path, wait: bool) -> int:
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise InputError(f"cannot create the lock file {path} ({exc.strerror or exc.__class__.__name__})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Busy(str(path)) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {os.uname().nodename}\n".encode())
            return fd
        os.close(fd)  # the holder removed it while we waited: lock the new one


def _release(path: Path, fd: int) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
    os.close(fd)


@contextlib.contextmanager
def exclusive(path: Path, wait: bool = True) -> Iterator[None]:
    """Hold the lock ``path`` for the block; with ``wait=False`` raise ``Busy`` if someone else holds it."""
    fd = _acquire(Path(path), wait)
    try:
        yield
    finally:
        _release(Path(path), fd)


def run_lock(folder: Path, stem: str) -> Path:
    """The lock file of one run's outputs (hidden, so galleries and globs of results ignore it)."""
    return Path(folder) / f".{stem}.lock"
