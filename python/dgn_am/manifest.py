"""The run manifest: a JSON record beside every result of what produced it, written last.

Because it is written after every other output of a run, its presence marks the run as finished
(``sweep`` relies on that to resume).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import sys
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .outputs import write_atomic


def sha256_file(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so a sweep hashes each model once."""
    st = Path(path).stat()
    return _sha256(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@cache
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def model_record(definition: Path, weights: Path) -> dict[str, str]:
    return {"definition": str(definition), "definition_sha256": sha256_file(definition),
            "weights": str(weights), "weights_sha256": sha256_file(weights)}


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def build(parameters: dict[str, Any], models: dict[str, dict[str, str]], caffe_build: dict[str, Any], device: str,
          results: dict[str, Any], wall_seconds: float) -> dict[str, Any]:
    """Everything needed to rerun and to judge a result, in one JSON-ready dict."""
    return {
        "tool": "dgn-am",
        "version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": _plain(parameters),
        "models": models,
        "caffe": {k: caffe_build.get(k) for k in ("caffe_commit", "cmake_flags", "patches", "cuda", "cudnn", "key")},
        "device": device,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "argv": sys.argv[1:],
        "wall_seconds": round(wall_seconds, 3),
        "results": _plain(results),
    }


def write(path: Path, manifest: dict[str, Any]) -> None:
    write_atomic(path, (json.dumps(manifest, indent=1, sort_keys=False) + "\n").encode())


def read(path: Path) -> dict[str, Any] | None:
    """A finished run's manifest, or None if there is none (or it is unreadable: the run did not finish)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
