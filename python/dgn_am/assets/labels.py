"""Names of units: the released nets' class lists, and a user's ``--labels`` file (one name per line).

Labels only name things (montage captions, gallery cards, a manifest's ``label``); no result depends
on them, so a damaged released list gives no names rather than an error where a view is drawn.
"""

from __future__ import annotations

from pathlib import Path

from ..common import paths
from ..common.errors import InputError, read_input
from .catalogue import NETS

#: A labels file longer than this is not a list of unit names.
MAX_LABELS = 1_000_000


def labels_for_net(net: str) -> dict[int, str]:
    """Class index to a short name for one of ``NETS`` (empty when its label list is not downloaded)."""
    path = paths.released(NETS[net][2])
    if not path.exists():
        return {}
    lines = str(read_input(path, "label list")).splitlines()
    labels: dict[int, str] = {}
    if net == "places205":  # "name index", e.g. "doorway/outdoor 71"
        for line in lines:
            name, _, idx = line.rpartition(" ")
            if idx.isdigit():
                labels[int(idx)] = name.replace("_", " ")
    else:  # synset_words: "n03724870 mask", first name before a comma
        for i, line in enumerate(lines):
            labels[i] = line.partition(" ")[2].split(",")[0].strip()
    return labels


def read_labels(path: Path) -> dict[int, str]:
    """A ``--labels`` file: line k (from 0) names unit k; blank lines name nothing; at most ``MAX_LABELS``.

    Names are the text of the line, stripped. An InputError, in one line, for a file that is not text.
    """
    lines = str(read_input(path, "labels file")).splitlines()
    if len(lines) > MAX_LABELS:
        raise InputError(f"labels file {path} has {len(lines):,} lines; a labels file names at most "
                         f"{MAX_LABELS:,} units, one per line")
    return {k: line.strip() for k, line in enumerate(lines) if line.strip()}


def label_of(labels: dict[int, str] | None, unit: int) -> str:
    """Unit ``unit``'s name, or "unit N" where there is none."""
    return (labels or {}).get(unit) or f"unit {unit}"
