"""The real-image halves of the paper's figures, from a user's image folder (``dgn-am figure NAME --images DIR``).

Fig. 5 sets the 9 validation images that drive a unit most beside its 9 synthetic ones; S16 the image
regions that drive a Places205 conv5 unit (its receptive field at the figure's position) beside its
synthetic ones; S10's captions rank the classes by their class accuracy. This machine has none of those
image sets, so each half runs on whatever labelled folder the user points at (the miniature model's exported
data in the tests), through ``topk`` and ``accuracy``; without ``--images`` the figure says what it left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..assets.models import Models
from ..common.errors import InputError
from ..results.images import read_image
from .figures import Figure

#: What each figure's real half is; figures not named here have none.
HALVES = {
    "fig5": "the k validation images that drive each unit most, beside its synthetic images (topk)",
    "s16": "the image regions (receptive fields at the figure's position) that drive each unit most (topk)",
    "s10": "each class's top-1 and top-5 accuracy over a labelled folder, the captions' ranking (accuracy)",
}


def left_out(fig: Figure) -> str | None:
    """The record's line for a figure made without ``--images`` (None: the figure has no real half)."""
    if fig.name not in HALVES:
        return None
    return f"left out: no --images given; the real half is {HALVES[fig.name]}"


def _side_by_side(left: Path, rights: list[Path], out: Path) -> Path:
    """``left`` (the synthetic montage) with ``rights`` (real montages, stacked) beside it, white between."""
    from ..results import montage

    a = read_image(left)
    b = [read_image(r) for r in rights]
    height = max(a.shape[0], sum(x.shape[0] for x in b))
    width = max(x.shape[1] for x in b)
    canvas = np.full((height, a.shape[1] + 16 + width, 3), 255, np.uint8)
    canvas[: a.shape[0], : a.shape[1]] = a
    y = 0
    for x in b:
        canvas[y : y + x.shape[0], a.shape[1] + 16 : a.shape[1] + 16 + x.shape[1]] = x
        y += x.shape[0]
    return montage.save(canvas, out)


def check(fig: Figure, images: Path, labels: Path | None, mean: str = "imagenet") -> None:
    """Before any run: the figure has a real half, and what it needs was given."""
    from .actrange import parse_mean

    parse_mean(mean)
    if fig.name not in HALVES:
        raise InputError(f"{fig.name} has no real-image half; --images applies to {', '.join(HALVES)}")
    if not Path(images).exists():
        raise InputError(f"--images {images} does not exist")
    if fig.name == "s10" and labels is None:
        raise InputError("s10 --images needs --labels (the class names its folders are named by)")


def make(fig: Figure, folder: Path, models: Models, montages: list[Path], images: Path, mean: str,
         labels: Path | None) -> dict:
    """Run ``fig``'s real half over ``images``; returns what the figure's record says about it."""
    from . import accuracy, topk

    check(fig, images, labels, mean)
    real = folder / "real"
    if fig.name == "s10":
        assert labels is not None
        result = accuracy.measure(models.net_definition, models.net_weights, fig.act_layer, images, labels, mean,
                                  real, gpu=models.gpu)
        ranked = sorted((u for u in fig.units if result.total.get(u)), key=lambda u: -result.per_class(1, u))
        return {"real_half": HALVES[fig.name], "images": str(images), "report": str(result.json.relative_to(folder)),
                "accuracy": {str(u): {"top1": result.per_class(1, u), "top5": result.per_class(5, u)}
                             for u in fig.units if result.total.get(u)},
                "ranked_by_top1": ranked, "missing_classes": [u for u in fig.units if not result.total.get(u)]}
    k = len(fig.seeds)
    xy = fig.xy if fig.tile == "rf" else None
    found = topk.find(models.net_definition, models.net_weights, fig.act_layer, list(fig.units), k, images, mean,
                      real, xy=xy, gpu=models.gpu)
    sides = []
    if fig.split and montages:  # fig5: one synthetic montage per unit, its real montage beside it
        for left, right in zip(montages, found.montages, strict=True):
            sides.append(_side_by_side(left, [right], left.with_name(f"{left.stem}_side.jpg")))
    elif montages:
        sides.append(_side_by_side(montages[0], found.montages, montages[0].with_name(f"{montages[0].stem}_side.jpg")))
    return {"real_half": HALVES[fig.name], "images": str(images), "k": k, "xy": xy,
            "topk": str(found.json.relative_to(folder)), "side_by_side": [s.name for s in sides],
            "skipped_images": len(found.skipped)}
