"""The run manifest: a JSON record beside every result of what produced it, written last.

Because it is written after every other output of a run, its presence marks the run as finished
(``sweep`` relies on that to resume).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..common import cache as disk_cache
from ..common.errors import InputError, read_input
from ..common.files import hash_file, write_atomic
from ..common.version import __version__

if TYPE_CHECKING:
    from ..assets.models import Models
    from ..backend.netinfo import NetInfo


def sha256_file(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so a sweep hashes each model once."""
    st = Path(path).stat()
    return _sha256(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@cache
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    identity = disk_cache.file_identity(Path(path))  # across processes: a 233 MB caffemodel takes 0.2 s to hash
    known = disk_cache.get("sha256", identity)
    if isinstance(known, str):
        return known
    digest = hash_file(path, "sha256")
    disk_cache.put("sha256", identity, digest)
    return digest


def model_record(definition: Path, weights: Path) -> dict[str, str]:
    return {"definition": str(definition), "definition_sha256": sha256_file(definition),
            "weights": str(weights), "weights_sha256": sha256_file(weights)}


def model_records(models: Models, with_encoder: bool, target: NetInfo | None = None,
                  generator: NetInfo | None = None) -> dict[str, dict[str, Any]]:
    """What a run's manifest records of its model files (hashes remembered per file version).

    With the loaded nets' descriptions it also says whether a definition lacked ``force_backward``;
    without them (deciding whether a run is finished, before any net loads) only the files are named.
    """
    records: dict[str, dict[str, Any]] = {
        "target": model_record(models.net_definition, models.net_weights),
        "generator": model_record(models.generator_definition, models.generator_weights),
    }
    for role, info in (("target", target), ("generator", generator)):
        if info is not None:
            records[role]["force_backward_added"] = info.force_backward_added
    if with_encoder:
        records["encoder"] = model_record(models.encoder_definition, models.encoder_weights)
    return records


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


#: Environment variables that change a result's last bits: which OpenBLAS kernel runs (OpenBLAS picks one
#: by CPU unless told), how many threads, and the Caffe patches' own switches. Those set are recorded.
ARITHMETIC_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "DGN_AM_CAFFE_FAST",
                  "DGN_AM_CAFFE_STOCK")


def build(parameters: dict[str, Any], models: dict[str, dict[str, str]], caffe_build: dict[str, Any], device: str,
          results: dict[str, Any], wall_seconds: float, batch: dict[str, Any] | None = None,
          label: str | None = None) -> dict[str, Any]:
    """Everything needed to rerun and to judge a result, in one JSON-ready dict.

    ``label``: the unit's name from a ``--labels`` file, kept beside the parameters (it is not one:
    a run named differently is the same run).

    ``batch``: the pass the run shared with others (its size, this run's position, the fast-math switch,
    whose convolutions ran), which decides its arithmetic: only a batch of one on stock Caffe is the
    released algorithm's, bit for bit.
    """
    record = {
        "tool": "dgn-am",
        "version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": _plain(parameters),
        "models": models,
        "caffe": {k: caffe_build.get(k) for k in ("caffe_commit", "cmake_flags", "patches", "cuda", "cudnn", "key")},
        "device": device,
        "environment": {k: os.environ[k] for k in ARITHMETIC_ENV if k in os.environ},
        "python": platform.python_version(),
        "numpy": np.__version__,
        "argv": sys.argv[1:],
        "wall_seconds": round(wall_seconds, 3),
        "batch": _plain(batch or {"size": 1, "position": 0}),
        "results": _plain(results),
    }
    if label:
        record["label"] = label
    return record


def write(path: Path, manifest: dict[str, Any]) -> None:
    write_atomic(path, (json.dumps(manifest, indent=1, sort_keys=False) + "\n").encode())


def read(path: Path) -> dict[str, Any] | None:
    """A finished run's manifest, or None if there is none (or it is unreadable: the run did not finish)."""
    if not Path(path).is_file():  # absent, or a FIFO or folder in the way (refused where outputs are checked)
        return None
    try:
        return json.loads(read_input(path, "manifest"))
    except (InputError, ValueError):
        return None


# --- is this the same run? (resuming, and refusing to write over a different run) --------------------

#: Parameters that do not change a run's result: where it was written, and whether frames were kept.
NOT_RESULT = ("output_dir", "debug")


def plain_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """Parameters as they read back from a manifest (paths as strings, tuples as lists)."""
    return json.loads(json.dumps(_plain(parameters), default=str))


def _model_hashes(models: Any) -> dict[str, tuple[Any, Any]] | None:
    if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
        return None
    return {k: (v.get("definition_sha256"), v.get("weights_sha256")) for k, v in models.items()}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def differences(record: Any, parameters: dict[str, Any], models: dict[str, dict[str, str]],
                ignore: tuple[str, ...] = NOT_RESULT) -> list[str]:
    """What differs between a manifest and a run about to be made, one phrase per setting or model.

    An empty list means the manifest records this very run (same settings, same model files).
    Anything that is not a run manifest differs as a whole.
    """
    if not isinstance(record, dict) or not isinstance(record.get("parameters"), dict):
        return ["the manifest is not a dgn-am run record"]
    old, new = record["parameters"], plain_parameters(parameters)
    out = [f"{key} {_short(old.get(key))} (this run: {_short(new.get(key))})"
           for key in sorted(set(old) | set(new)) if key not in ignore and old.get(key) != new.get(key)]
    old_models, new_models = _model_hashes(record.get("models")), _model_hashes(models)
    if old_models is None:
        out.append("its model records are unreadable")
    else:
        for role in sorted(set(old_models) | set(new_models or {})):
            before, after = old_models.get(role, (None, None)), (new_models or {}).get(role, (None, None))
            for what, a, b in (("definition", before[0], after[0]), ("weights", before[1], after[1])):
                if a != b:
                    out.append(f"{role} {what} sha256 {str(a)[:12]} (this run: {str(b)[:12]})")
    return out


def finished(path: Path, parameters: dict[str, Any], models: dict[str, dict[str, str]]) -> bool:
    """Is the manifest at ``path`` this run's (every setting, debug included), with all its outputs there?"""
    record = read(path)
    if differences(record, parameters, models, ignore=("output_dir",)):
        return False
    results = record.get("results")
    outputs = results.get("outputs") if isinstance(results, dict) else None
    if not isinstance(outputs, dict) or "png" not in outputs:
        return False
    folder = Path(path).parent
    return all(isinstance(name, str) and "/" not in name and (folder / name).is_file() for name in outputs.values())
