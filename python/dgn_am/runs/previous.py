"""What an earlier run left under a run's names: refusing a different run, and clearing it for this one.

A folder that holds a *different* run under the same released file name is refused (``--overwrite``
replaces it); clearing removes the old manifest first, so a process killed part-way leaves an
unfinished run, never an old manifest beside new files.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..common.errors import InputError
from ..results import manifest
from .run import FRAME, Run, RunConflict


def check_not_another_run(run: Run, json_path: Path, models: dict[str, Any], overwrite: bool) -> None:
    """Refuse to write over a different run that has the same released file name, unless ``overwrite``."""
    if overwrite or not json_path.exists():
        return  # no manifest: nothing finished here, so whatever files there are get replaced
    record = manifest.read(json_path)
    diffs = manifest.differences(record, asdict(run), models)
    if diffs:
        shown = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
        raise RunConflict(f"{json_path} records a different run under the same file name ({shown}); pass "
                         "--overwrite to replace it, or choose another --output_dir")


def clear_previous(run: Run, paths: dict[str, Path], models: dict[str, Any]) -> None:
    """Remove what an earlier run under this name left: its manifest first, then its files and temporaries.

    With the manifest gone first, a process killed part-way leaves an unfinished run (no manifest),
    never an old manifest beside new files. Files the earlier run listed that this one does not write
    (a receptive-field crop, the debug frames of a different run) go too, so two runs never mix.
    """
    json_path = paths["json"]
    record = manifest.read(json_path)
    json_path.unlink(missing_ok=True)
    ours = {path.name for path in paths.values()}
    results = record.get("results") if isinstance(record, dict) else None
    listed = results.get("outputs") if isinstance(results, dict) else None
    old = {v for v in (listed or {}).values() if isinstance(v, str) and "/" not in v and v.startswith(run.stem())}
    for name in old - ours:
        (run.output_dir / name).unlink(missing_ok=True)
    if record is not None and manifest.differences(record, asdict(run), models) and run.frames_dir().is_dir():
        _remove_frames(run.frames_dir())
    for name in old | ours:
        for tmp in run.output_dir.glob(f".{_glob_escape(name)}.*.tmp"):  # what a killed write_atomic leaves
            tmp.unlink(missing_ok=True)


def _remove_frames(folder: Path) -> None:
    """Delete the debug frames dgn-am wrote into ``folder``, and the folder once it is empty."""
    for frame in folder.iterdir():
        if FRAME.fullmatch(frame.name):
            frame.unlink()
    if not any(folder.iterdir()):
        folder.rmdir()


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def replace_folder(new: Path, final: Path) -> None:
    """Put the folder ``new`` at ``final``, removing the frames an earlier run left there."""
    if final.is_dir():
        _remove_frames(final)  # check_outputs refused a folder with anything else in it
    if final.exists():
        raise InputError(f"{final} holds files dgn-am did not write; move them or choose another --output_dir")
    new.rename(final)
