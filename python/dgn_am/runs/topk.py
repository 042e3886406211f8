"""The k real images that drive each unit most (Fig. 5's and S16's real halves), over a folder of any size.

For a unit of an InnerProduct layer the activation is the unit's value; for a conv unit, its value at
``--xy`` or, without it, its best position in each image (recorded, with the receptive field the crop
comes from). Images stream through the net a batch at a time, the next batch decoded in a worker thread;
only each unit's current top k is kept. After every batch the state (the file list's sha256, how far it
got, every top k so far) is written atomically beside the outputs, so a run that is killed goes on where
it stopped when started again with the same inputs. Unreadable images are listed and skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.errors import InputError, read_input
from ..results.images import read_image
from .accuracy import prefetched_batches
from .actrange import IMAGE_SUFFIXES, input_blob, parse_mean, probe_image_net

STATE = "topk.state.json"


@dataclass
class TopK:
    """What ``find`` returns: per unit its top entries (path, activation, (x, y) or None), and the files."""

    tops: dict[int, list[tuple[str, float, tuple[int, int] | None]]]
    skipped: list[tuple[str, str]]
    n_images: int
    resumed_at: int
    json: Path
    montages: list[Path]


def image_list(images: Path) -> list[Path]:
    """A folder's images (recursively, sorted), or the paths a list file names (one per line)."""
    images = Path(images)
    if images.is_dir():
        files = sorted(p for p in images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    elif images.is_file():
        files = [Path(line.strip()) for line in str(read_input(images, "image list")).splitlines() if line.strip()]
    else:
        raise InputError(f"--images {images} is neither a folder nor a file list")
    if not files:
        raise InputError(f"--images {images} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _digest(files: Sequence[Path], settings: dict) -> str:
    text = json.dumps(settings, sort_keys=True) + "".join(f"\n{p}" for p in files)
    return hashlib.sha256(text.encode()).hexdigest()


def _load_state(path: Path, digest: str, units: Sequence[int]) -> tuple[int, dict, list]:
    try:
        state = json.loads(path.read_text())
        if state.get("digest") == digest:
            tops = {int(u): [(p, float(a), tuple(xy) if xy else None) for p, a, xy in v]
                    for u, v in state["tops"].items()}
            if sorted(tops) == sorted(units):
                return int(state["next"]), tops, [tuple(s) for s in state["skipped"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no state, or another run's: start from the first image
    return 0, {u: [] for u in units}, []


def find(net_definition: Path, net_weights: Path, layer: str, units: Sequence[int], k: int, images: Path,
         mean: str, output_dir: Path, xy: int | None = None, batch: int = 50,
         progress: Callable[[int, int], None] | None = None, gpu: int | None = None) -> TopK:
    """Each unit's ``k`` strongest images of ``images``; writes ``topk.json``, a montage per unit and a manifest."""
    from .. import backend as cb
    from ..backend.netinfo import receptive_field
    from ..common.files import check_destination, ensure_writable_dir, hash_file, write_atomic
    from ..results import montage

    if k < 1 or batch < 1:
        raise InputError(f"--k and --batch must be at least 1, got {k} and {batch}")
    if not units:
        raise InputError("--units is empty")
    mean_value = parse_mean(mean)
    files = image_list(images)
    info = probe_image_net(net_definition, [layer])
    shape = info.blobs[layer]
    conv = len(shape) == 4
    for u in units:
        if not 0 <= u < shape[1]:
            raise InputError(f"unit {u} is out of range: blob '{layer}' has {shape[1]} units (0..{shape[1] - 1})")
    if xy is not None and (not conv or not (0 <= xy < min(shape[2], shape[3]))):
        raise InputError(f"--xy {xy}: blob '{layer}' is {'x'.join(map(str, shape[2:])) if conv else 'not spatial'}")
    device = cb.set_mode(gpu)  # a GPU that cannot run is one line, before any file
    out = ensure_writable_dir(Path(output_dir))
    json_path = out / "topk.json"
    montages = [out / f"{layer.replace('/', '_')}_{u:04d}.jpg" for u in units]
    for path in [json_path, out / STATE, *montages]:
        check_destination(path, [Path(net_definition), Path(net_weights)])
    size = (int(info.blobs["data"][2]), int(info.blobs["data"][3]))
    settings = {"net_weights_sha256": hash_file(net_weights), "layer": layer, "units": list(units), "k": k,
                "mean": mean, "xy": xy}
    digest = _digest(files, settings)
    start, tops, skipped = _load_state(out / STATE, digest, units)
    net, _ = cb.load_net(net_definition, net_weights)

    def decode(path: Path) -> tuple[np.ndarray, Path]:
        return input_blob(read_image(path, "image"), mean_value, size, cb.imagenet_mean), path

    rest = [(f, 0) for f in files[start:]]
    done = start
    for decoded, _, bad in prefetched_batches(rest, batch, decode):
        skipped += bad
        done += len(decoded) + len(bad)
        if decoded:
            acts = cb.encode(net, np.concatenate([b for b, _ in decoded]), layer)
            for u in units:
                a = acts[:, u]
                if conv and xy is not None:
                    vals, where = a[:, xy, xy], [(xy, xy)] * len(decoded)
                elif conv:
                    flat = a.reshape(len(decoded), -1).argmax(1)
                    vals = a.reshape(len(decoded), -1)[np.arange(len(decoded)), flat]
                    where = [(int(i % a.shape[2]), int(i // a.shape[2])) for i in flat]
                else:
                    vals, where = a.reshape(len(decoded)), [None] * len(decoded)
                merged = tops[u] + [(str(p), float(v), w) for (_, p), v, w in zip(decoded, vals, where, strict=True)]
                tops[u] = sorted(merged, key=lambda e: -e[1])[:k]
        state = {"digest": digest, "next": done, "tops": {str(u): v for u, v in tops.items()}, "skipped": skipped}
        write_atomic(out / STATE, json.dumps(state).encode())
        if progress:
            progress(done, len(files))
    if not any(tops.values()):
        raise InputError(f"none of the {len(files)} images of {images} could be read")
    from PIL import Image

    layers = cb.spatial_layers(net_definition) if conv else None
    for u, path in zip(units, montages, strict=True):
        tiles, labels = [], []
        for p, act, where in tops[u]:
            view = Image.fromarray(read_image(Path(p))).resize((size[1], size[0]), Image.BILINEAR)
            rgb = np.asarray(view, dtype=np.float32) / 255  # what the net saw, as encoder_input resizes it
            if where is not None:
                top, left, h, w = receptive_field(layers, layer, where[0], where[1], size)
                rgb = rgb[top : top + h, left : left + w]
            tiles.append(rgb)
            labels.append(f"{act:.1f}")
        side = max(max(t.shape[0], t.shape[1]) for t in tiles)
        tiles = [np.pad(t, ((0, side - t.shape[0]), (0, side - t.shape[1]), (0, 0)), constant_values=1.0)
                 for t in tiles]
        montage.save(montage.render(tiles, labels, montage.grid_geometry(path.stem, side, len(tiles), 3)), path)
    report = {str(u): [[p, a] for p, a, _ in v] for u, v in tops.items()}
    positions = {str(u): [w for _, _, w in v] for u, v in tops.items()} if conv else None
    write_atomic(json_path, (json.dumps(report, indent=1) + "\n").encode())
    manifest = {"settings": {**settings, "net_definition": str(net_definition), "net_weights": str(net_weights),
                             "images": str(images), "batch": batch},
                "file_list_sha256": hashlib.sha256("".join(f"{p}\n" for p in files).encode()).hexdigest(),
                "n_images": len(files), "device": device, "skipped": [{"path": p, "reason": r} for p, r in skipped],
                "positions": positions, "montages": [str(m) for m in montages]}
    write_atomic(out / "topk.manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    return TopK(tops, skipped, len(files), start, json_path, montages)
