"""The miniature encoder run straight on a split's pixels (no files): what the real-image tools must agree with."""

from __future__ import annotations

import numpy as np

from dgn_am import backend as cb
from dgn_am.mini import data

from ..conftest import PROTOTXT, ROOT

ENCODER = PROTOTXT / "mini" / "encoder.prototxt"
WEIGHTS = ROOT / "nets" / "mini" / "encoder.caffemodel"
LABELS = ROOT / "nets" / "mini" / "labels.txt"


def encoder_blob(layer: str, per_class: int, chunk: int = 40) -> np.ndarray:
    """Blob ``layer`` of E for every image of the held-out split (``per_class`` per class), in split order."""
    images, _ = data.make_split("heldout", per_class, data.DATA_SEED)
    c = cb.caffe()
    net = c.Net(str(ENCODER), c.TEST, weights=str(WEIGHTS))
    out = []
    for start in range(0, len(images), chunk):
        blob = data.to_blob(images[start : start + chunk])
        net.blobs["data"].reshape(*blob.shape)
        net.blobs["data"].data[...] = blob
        net.forward()
        out.append(net.blobs[layer].data.copy())
    return np.concatenate(out)
