"""The nearest real image of each synthetic one (S22): in pixel space and in the code of each chosen layer.

S22 shows that DGN-AM does not reproduce training images: beside each synthetic image stands the real
image of the same class closest to it, once by pixels and once per layer of the target net. Distances
are Euclidean, pixels on the 0-255 scale of the image the net sees (resized to its input), codes on the
flattened blob. A result's class is its run's unit (its manifest says so); real images come from a
labelled folder as ``dgn-am accuracy`` reads it, streamed a batch at a time (never all in memory).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.errors import InputError
from ..results.compare_runs import result_image, result_runs
from ..results.images import read_image
from .accuracy import labelled_files, prefetched_batches
from .actrange import input_blob, parse_mean, probe_image_net

PIXELS = "pixels"


@dataclass
class Neighbors:
    """Per result (its image file): per space, the nearest real image and its distance."""

    nearest: dict[str, dict[str, tuple[str, float]]]
    strips: list[Path]
    json: Path
    skipped: list[tuple[str, str]]


def _view(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.BILINEAR), dtype=np.uint8)


def find(net_definition: Path, net_weights: Path, results: Path, images: Path, labels: Path, layers: list[str],
         mean: str, output_dir: Path, label_file: Path | None = None, batch: int = 50,
         progress: Callable[[int, int], None] | None = None, gpu: int | None = None) -> Neighbors:
    """For every run of ``results`` (a folder of dgn-am results), its nearest real image per space."""
    from .. import backend as cb
    from ..assets.labels import read_labels
    from ..common.files import check_destination, ensure_writable_dir, write_atomic
    from ..results import montage

    mean_value = parse_mean(mean)
    runs = result_runs(Path(results))
    if not runs:
        raise InputError(f"{results} holds no dgn-am run manifests")
    names = read_labels(labels)
    pairs = labelled_files(images, names, label_file)
    info = probe_image_net(net_definition, layers)
    synthetic = []
    for path, record in runs:
        unit = record["parameters"].get("unit")
        if record["parameters"].get("unit2") is not None or unit not in names:
            raise InputError(f"{path.name}: its unit {unit} is not one class of --labels (neighbors compares "
                             "single-class results with real images of that class)")
        synthetic.append((path, unit, result_image(path, record)))
    device = cb.set_mode(gpu)  # a GPU that cannot run is one line, before any file
    out = ensure_writable_dir(Path(output_dir))
    strips = [out / f"neighbors_{path.stem}.jpg" for path, _, _ in synthetic]
    for p in [out / "neighbors.json", *strips]:
        check_destination(p, [Path(images), Path(net_definition), Path(net_weights)])
    size = (int(info.blobs["data"][2]), int(info.blobs["data"][3]))
    net, _ = cb.load_net(net_definition, net_weights)

    def features(views: list[np.ndarray]) -> dict[str, np.ndarray]:
        blobs = np.concatenate([input_blob(v, mean_value, size, cb.imagenet_mean) for v in views])
        codes = cb.encode_many(net, blobs, layers)
        feats = {layer: codes[layer].reshape(len(views), -1) for layer in layers}
        feats[PIXELS] = np.stack(views).reshape(len(views), -1).astype(np.float32)
        return feats

    spaces = [PIXELS, *layers]
    mine = features([_view(rgb, size) for _, _, rgb in synthetic])
    best = [{s: (np.inf, "") for s in spaces} for _ in synthetic]
    skipped: list[tuple[str, str]] = []

    def decode(path: Path) -> tuple[np.ndarray, Path]:
        return _view(read_image(path, "image"), size), path

    done = 0
    for views, classes, bad in prefetched_batches(pairs, batch, decode):
        skipped += bad
        done += len(views) + len(bad)
        if views:
            theirs = features([v for v, _ in views])
            for i, (_, unit, _) in enumerate(synthetic):
                same = [j for j, c in enumerate(classes) if c == unit]
                for s in spaces if same else ():
                    d = np.linalg.norm(theirs[s][same] - mine[s][i], axis=1)
                    j = int(d.argmin())
                    if d[j] < best[i][s][0]:
                        best[i][s] = (float(d[j]), str(views[same[j]][1]))
        if progress:
            progress(done, len(pairs))
    nearest: dict[str, dict[str, tuple[str, float]]] = {}
    for (path, unit, rgb), found, strip in zip(synthetic, best, strips, strict=True):
        if not found[PIXELS][1]:
            raise InputError(f"{images} holds no readable image of class {unit} ({names[unit]}) for {path.name}")
        nearest[path.name] = {s: (p, d) for s, (d, p) in found.items()}
        tiles = [_view(rgb, size).astype(np.float32) / 255] + [
            _view(read_image(Path(p)), size).astype(np.float32) / 255 for s, (d, p) in found.items()]
        labels_ = [f"{names[unit]}"] + [f"{s} {d:.1f}" for s, (d, p) in found.items()]
        montage.save(montage.render(tiles, labels_, montage.grid_geometry(strip.stem, size[0], len(tiles),
                                                                          len(tiles))), strip)
    report = {"nearest": {r: {s: {"image": p, "distance": d} for s, (p, d) in v.items()} for r, v in nearest.items()},
              "spaces": spaces, "skipped": [{"path": p, "reason": r} for p, r in skipped],
              "measured": {"net_definition": str(net_definition), "net_weights": str(net_weights), "mean": mean,
                           "device": device, "results": str(results), "images": str(images)}}
    write_atomic(out / "neighbors.json", (json.dumps(report, indent=1) + "\n").encode())
    return Neighbors(nearest, strips, out / "neighbors.json", skipped)
