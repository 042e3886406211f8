"""Where the project's files live: prototxts in the checkout, models under nets/ (or $DGN_AM_NETS)."""

from __future__ import annotations

import os
from pathlib import Path

#: The checkout (the package is installed editable from python/, three levels above this file).
ROOT = Path(__file__).resolve().parents[3]
PROTOTXT = ROOT / "prototxt"
#: The miniature model's weights and data: committed with the code (not downloaded), so they are read
#: from the checkout even where $DGN_AM_NETS points at a mounted folder of downloaded models.
MINI_NETS = ROOT / "nets" / "mini"
#: The code layers dgn-am has a generator for (prototxt/generator_<layer>.prototxt): valid --opt_layer values.
CODE_LAYERS = ("fc6", "fc7", "pool5")


def nets_dir() -> Path:
    """Model files: $DGN_AM_NETS if set (e.g. a host folder mounted into Docker), else nets/ here."""
    return Path(os.environ.get("DGN_AM_NETS", ROOT / "nets"))


def caffenet_definition() -> Path:
    return PROTOTXT / "caffenet.prototxt"


def caffenet_weights() -> Path:
    return nets_dir() / "caffenet" / "bvlc_reference_caffenet.caffemodel"


def generator_definition(layer: str) -> Path:
    return PROTOTXT / f"generator_{layer}.prototxt"


def generator_weights(layer: str) -> Path:
    return nets_dir() / "generators" / layer / "generator.caffemodel"


def released(relative: str) -> Path:
    """A file of the released DGN-AM data (act_range/, images/, misc/) as `dgn-am download` saves it."""
    return nets_dir() / "released" / relative


def is_under_nets(path: Path) -> bool:
    """Is ``path`` inside the models folder (a file `dgn-am download` would fetch)? Symlinks are not followed."""
    return Path(os.path.abspath(nets_dir())) in Path(os.path.abspath(path)).parents


def shown(path: Path | str) -> str:
    """A path as the user would type it: relative to the working folder when inside it."""
    p = Path(path)
    try:
        return str(Path(os.path.abspath(p)).relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(p)
