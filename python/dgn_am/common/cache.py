"""What one process learned that the next can reuse: probe results, file hashes, parsed caffemodels.

Every ``dgn-am`` process used to spend about 4 s before its first iteration: building each net once in
a probe child, hashing and parsing the caffemodels. Those answers depend only on what is hashed into
their keys (a definition's bytes and the Caffe build; a file's identity: path, size, mtime, inode and
ctime, as git's index keys a file), so they are kept under ``$DGN_AM_CACHE_DIR`` (default
``~/.cache/dgn-am``, where the Caffe build is cached too), one small JSON file per answer, written
atomically, so concurrent processes (sweep shards, SLURM tasks) share it safely. The cache is only
ever a shortcut: a miss, an unreadable entry or a read-only cache folder costs the time it saved,
never a result. ``DGN_AM_NO_CACHE=1`` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .files import write_atomic

#: Bumped whenever what is stored under a kind changes shape, so old entries are never misread.
FORMAT = 1


def cache_dir() -> Path:
    """``$DGN_AM_CACHE_DIR``, else ``$XDG_CACHE_HOME/dgn-am``, else ``~/.cache/dgn-am`` (as install_caffe.sh)."""
    if os.environ.get("DGN_AM_CACHE_DIR"):
        return Path(os.environ["DGN_AM_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dgn-am"


def enabled() -> bool:
    return os.environ.get("DGN_AM_NO_CACHE") != "1"


def file_identity(path: Path) -> str:
    """A file's version as the file system tells it: any write or replacement changes it."""
    st = Path(path).stat()
    return f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_ctime_ns}"


def _entry(kind: str, key: str) -> Path:
    digest = hashlib.sha256(f"{FORMAT}|{kind}|{key}".encode("utf-8", "surrogateescape")).hexdigest()
    return cache_dir() / kind / f"{digest[:40]}.json"


def get(kind: str, key: str) -> Any | None:
    """The value stored for ``key``, or None (a miss, an unreadable entry, or the cache turned off)."""
    if not enabled():
        return None
    try:
        record = json.loads(_entry(kind, key).read_text())
    except (OSError, ValueError):
        return None
    # The key is stored beside the value: a hash collision or a damaged entry reads as a miss.
    return record.get("value") if isinstance(record, dict) and record.get("key") == key else None


def put(kind: str, key: str, value: Any) -> None:
    """Store ``value`` (JSON-ready) for ``key``; a cache that cannot be written is simply not used."""
    if not enabled():
        return
    path = _entry(kind, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"key": key, "value": value}).encode("utf-8", "surrogateescape"))
    except Exception:  # noqa: BLE001 - InputError or OSError: the cache is optional, the run goes on
        return
