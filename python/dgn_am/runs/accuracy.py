"""Per-class top-1 / top-5 accuracy of a net over a labelled image folder (what S10's captions rank by).

A labelled folder is either a folder per class, named as the net's ``--labels`` file names its classes,
or a flat list: ``--label_file`` with one ``path label`` per line (the label a class index or a name;
paths relative to the folder). Images stream through the net a batch at a time, the next batch decoded
in a worker thread while the net runs, so a folder of any size fits in memory. An image that cannot be
read is listed and skipped (the count is in the output and the report), never a crash; an empty folder,
a class the labels do not name, or a label out of the net's range stops with one line before any net runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..common.errors import InputError, read_input
from ..results.images import read_image
from .actrange import IMAGE_SUFFIXES, input_blob, parse_mean, probe_image_net

#: Predictions counted as top-k hits (S10 and the ImageNet convention).
TOP_K = (1, 5)


@dataclass
class Accuracy:
    """The result of ``measure``: counts per class, the images skipped, and the reports written."""

    classes: dict[int, str]
    total: dict[int, int]
    hits: dict[int, dict[int, int]]  # k -> class -> images whose label is among the net's top k
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    csv: Path | None = None
    json: Path | None = None

    def overall(self, k: int) -> float:
        n = sum(self.total.values())
        return sum(self.hits[k].values()) / n if n else 0.0

    def per_class(self, k: int, label: int) -> float:
        return self.hits[k][label] / self.total[label] if self.total[label] else 0.0


def labelled_files(images: Path, names: dict[int, str], label_file: Path | None = None) -> list[tuple[Path, int]]:
    """Every (image, class index) of a labelled folder, checked before any net runs."""
    images = Path(images)
    if not images.is_dir():
        raise InputError(f"image folder {images} does not exist or is not a folder")
    index = {name: k for k, name in names.items()}
    pairs: list[tuple[Path, int]] = []
    if label_file is not None:
        for n, line in enumerate(str(read_input(label_file, "label file")).splitlines(), 1):
            if not line.strip():
                continue
            path, _, label = line.strip().rpartition(" ")
            if not path:
                raise InputError(f"label file {label_file}, line {n}: expected 'path label', got {line.strip()!r}")
            k = int(label) if label.lstrip("-").isdigit() else index.get(label)
            if k is None or k not in names:
                raise InputError(f"label file {label_file}, line {n}: label {label!r} is not one of the "
                                 f"{len(names)} classes of --labels")
            pairs.append((images / path, k))
    else:
        folders = sorted(p for p in images.iterdir() if p.is_dir())
        if not folders:
            raise InputError(f"image folder {images} has no class folders (give --label_file for a flat folder)")
        for folder in folders:
            if folder.name not in index:
                raise InputError(f"class folder '{folder.name}' of {images} is not a class of --labels "
                                 f"({', '.join(list(index)[:5])}{', ...' if len(index) > 5 else ''})")
            pairs += [(p, index[folder.name]) for p in sorted(folder.iterdir())
                      if p.suffix.lower() in IMAGE_SUFFIXES]
    if not pairs:
        raise InputError(f"image folder {images} holds no labelled images ({', '.join(IMAGE_SUFFIXES)})")
    return pairs


def list_digest(pairs: Sequence[tuple[Path, int]], root: Path) -> str:
    """sha256 of the file list (relative paths and labels), so a report names exactly what it measured."""
    text = "".join(f"{p.relative_to(root) if p.is_relative_to(root) else p}\t{k}\n" for p, k in pairs)
    return hashlib.sha256(text.encode()).hexdigest()


def prefetched_batches(pairs: Sequence[tuple[Path, int]], size: int, decode: Callable[[Path], np.ndarray],
             ) -> Iterator[tuple[list[np.ndarray], list[int], list[tuple[str, str]]]]:
    """Batches of decoded images (and their labels, and the unreadable ones), the next decoded while the net runs."""

    def load(chunk: Sequence[tuple[Path, int]]) -> tuple[list[np.ndarray], list[int], list[tuple[str, str]]]:
        blobs, labels, bad = [], [], []
        for path, label in chunk:
            try:
                blobs.append(decode(path))
                labels.append(label)
            except InputError as exc:
                bad.append((str(path), str(exc)))
        return blobs, labels, bad

    chunks = [pairs[i : i + size] for i in range(0, len(pairs), size)]
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load, chunks[0]) if chunks else None
        for i in range(len(chunks)):
            assert pending is not None
            result = pending.result()
            pending = pool.submit(load, chunks[i + 1]) if i + 1 < len(chunks) else None
            yield result


def measure(net_definition: Path, net_weights: Path, layer: str, images: Path, labels: Path, mean: str,
            output_dir: Path, label_file: Path | None = None, batch: int = 50,
            progress: Callable[[int, int], None] | None = None, gpu: int | None = None) -> Accuracy:
    """Top-1 and top-5 accuracy per class of blob ``layer`` (one score per class) over a labelled folder.

    Writes ``accuracy.csv`` (class, name, images, top1, top5) and ``accuracy.json`` (the same, overall
    figures, the skipped images, and what was measured: net files, layer, mean, the file list's sha256).
    """
    from .. import backend as cb
    from ..assets.labels import read_labels
    from ..common.files import check_destination, ensure_writable_dir, hash_file, write_atomic

    if batch < 1:
        raise InputError(f"--batch must be at least 1, got {batch}")
    mean_value = parse_mean(mean)
    names = read_labels(labels)
    if not names:
        raise InputError(f"labels file {labels} names no classes")
    pairs = labelled_files(images, names, label_file)
    device = cb.set_mode(gpu)  # a GPU that cannot run is one line, before any file
    out = ensure_writable_dir(Path(output_dir))
    csv_path, json_path = out / "accuracy.csv", out / "accuracy.json"
    for path in (csv_path, json_path):
        check_destination(path, [Path(images), Path(labels), Path(net_definition), Path(net_weights)])
    info = probe_image_net(net_definition, [layer])
    width = int(np.prod(info.blobs[layer][1:]))
    if max(names) >= width:
        raise InputError(f"--labels names class {max(names)}, but blob '{layer}' has {width} units")
    net, _ = cb.load_net(net_definition, net_weights)
    size = (int(info.blobs["data"][2]), int(info.blobs["data"][3]))

    def decode(path: Path) -> np.ndarray:
        return input_blob(read_image(path, "image"), mean_value, size, cb.imagenet_mean)

    result = Accuracy(names, dict.fromkeys(names, 0), {k: dict.fromkeys(names, 0) for k in TOP_K})
    done = 0
    for blobs, truth, bad in prefetched_batches(pairs, batch, decode):
        result.skipped += bad
        done += len(blobs) + len(bad)
        if blobs:
            scores = cb.encode(net, np.concatenate(blobs), layer).reshape(len(blobs), -1)
            order = np.argsort(-scores, axis=1, kind="stable")
            for row, label in zip(order, truth, strict=True):
                result.total[label] += 1
                for k in TOP_K:
                    result.hits[k][label] += int(label in row[:k])
        if progress:
            progress(done, len(pairs))
    if not sum(result.total.values()):
        raise InputError(f"none of the {len(pairs)} images of {images} could be read")
    rows = ["class,name,images,top1,top5"] + [
        f"{c},{json.dumps(names[c])},{result.total[c]},{result.per_class(1, c):.6f},{result.per_class(5, c):.6f}"
        for c in sorted(names) if result.total[c]]
    write_atomic(csv_path, ("\n".join(rows) + "\n").encode())
    report = {
        "top1": result.overall(1), "top5": result.overall(5), "images": sum(result.total.values()),
        "skipped": [{"path": p, "reason": r} for p, r in result.skipped],
        "classes": {str(c): {"name": names[c], "images": result.total[c], "top1": result.per_class(1, c),
                             "top5": result.per_class(5, c)} for c in sorted(names) if result.total[c]},
        "measured": {"net_definition": str(net_definition), "net_weights": str(net_weights),
                     "net_weights_sha256": hash_file(net_weights), "layer": layer, "mean": mean,
                     "device": device, "images": str(images), "label_file": str(label_file) if label_file else None,
                     "file_list_sha256": list_digest(pairs, Path(images))},
    }
    write_atomic(json_path, (json.dumps(report, indent=1) + "\n").encode())
    result.csv, result.json = csv_path, json_path
    return result
