"""Act-range files: per-unit upper bounds of a code layer, mean + k standard deviations over real images.

DGN-AM clips every code unit to [0, bound] (FACTS §5 step 7). The released bounds
(``act_range/{1x,2x,3x}/fc6.txt``) are, per their README, "k times the standard deviation around the
mean activation", k = 1, 2, 3: the files agree, since per unit 3x - 2x and 2x - 1x are the same number
up to rounding (mean 3.74 for both: the std), and 1x minus that (0.63 on average) is a plausible mean
of post-ReLU fc6. So the Nx file is ``mean + N * std`` and ``--k N`` writes it. The released values are
integers (rounded); ``decimals`` keeps more digits where a code's units are small.

Statistics are per element of the flattened blob (a conv code is bounded element by element too),
population std (ddof 0), accumulated batch by batch in float64 (Chan et al.'s pairwise update), so a
large image folder never has to fit in memory. Negative bounds (possible only for a layer without a
ReLU) are raised to 0: the code's lower clip is 0 anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..common.errors import InputError, regular_file
from ..core.bounds import RunningStats, bounds, format_bounds
from ..results.images import read_image

#: ``--k`` beyond this is no bound at all (the released files go to 3); far larger overflows the file.
MAX_K = 100.0
MAX_DECIMALS = 10
#: File endings read from an image folder (case-insensitive); other files are ignored.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def parse_mean(text: str) -> float | None:
    """``--mean``: ``imagenet`` (None: the ImageNet mean image) or a number subtracted from every pixel."""
    if text.strip().lower() == "imagenet":
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"--mean must be 'imagenet' or a number, got {text!r}") from None
    if not np.isfinite(value):
        raise InputError(f"--mean must be a finite number, got {text!r}")
    return value


def image_files(directory: Path) -> list[Path]:
    """The images of a folder (by file ending, sorted by name), or an InputError if there are none."""
    directory = Path(directory)
    try:
        entries = sorted(directory.iterdir()) if directory.is_dir() else None
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise InputError(f"image folder {directory} cannot be listed ({reason})") from None
    if entries is None:
        raise InputError(f"image folder {directory} does not exist or is not a folder")
    # An entry with an image's name must be a readable regular file: a FIFO, a folder or a symlink loop
    # called x.png is refused by name rather than skipped, so the count of images is never silently short.
    files = [regular_file(p, "image") for p in entries if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise InputError(f"image folder {directory} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def check_images(files: Sequence[Path]) -> None:
    """Decode every file once, so an unreadable one is found before any net is loaded.

    The pixels are not kept (a large folder need not fit in memory); ``compute`` decodes them again.
    """
    for path in files:
        read_image(path, "image")


def input_blob(rgb: np.ndarray, mean: float | None, size: tuple[int, int], imagenet_mean: Callable[[], np.ndarray],
               ) -> np.ndarray:
    """One image as the encoder's input (1 x 3 x H x W): resized, BGR, minus the ImageNet mean image or a constant.

    Both go through ``core.pixels.encoder_input`` (the released preprocessing); a constant is a flat mean image.
    """
    from ..core.pixels import encoder_input

    mean_bgr = imagenet_mean() if mean is None else np.full((3, *size), mean, dtype=np.float32)
    return encoder_input(rgb, mean_bgr, size)


def probe_image_net(net_definition: Path, layers: Sequence[str]) -> Any:
    """The probed net (``backend.probe``) after checking it takes images at blob ``data`` and has ``layers``.

    The one check every command that runs real images through a net makes before loading it.
    """
    from .. import backend as cb
    from ..backend.netinfo import check_net_input

    info = cb.probe(net_definition)
    if "data" not in info.blobs or len(info.blobs["data"]) != 4:
        raise InputError(f"net definition {net_definition} has no 4-d input blob 'data'")
    check_net_input(info, "data", "image input")
    for layer in layers:
        if layer not in info.blobs:
            raise InputError(f"net {net_definition} has no blob '{layer}'; its blobs are: {', '.join(info.blobs)}")
    return info


@dataclass(frozen=True)
class ActRange:
    """The result of ``compute``: the bounds, what they came from, and the file written."""

    bounds: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    n_images: int
    output: Path


def compute(net_definition: Path, net_weights: Path, layer: str, images_dir: Path, k: float, mean: str,
            output: Path, decimals: int = 0, batch: int = 50) -> ActRange:
    """Run the encoder over every image of ``images_dir``, write ``mean + k * std`` of blob ``layer``.

    Every input is checked before Caffe sees any of it: k, the mean, the folder and each image, the
    output folder, the net (probed in a child process), the layer name and the weights.
    """
    from .. import backend as cb
    from ..common.files import check_destination, ensure_writable_dir, write_atomic

    if not (np.isfinite(k) and 0 < k <= MAX_K):
        raise InputError(f"--k must be a number in (0, {MAX_K:g}] (standard deviations above the mean), got {k}")
    if not 0 <= decimals <= MAX_DECIMALS:
        raise InputError(f"--decimals must be between 0 and {MAX_DECIMALS}, got {decimals}")
    mean_value = parse_mean(mean)
    files = image_files(images_dir)
    ensure_writable_dir(Path(output).parent)
    check_destination(Path(output), [*files, Path(net_definition), Path(net_weights)])
    check_images(files)
    info = probe_image_net(net_definition, [layer])
    net, _ = cb.load_net(net_definition, net_weights)
    size = (int(info.blobs["data"][2]), int(info.blobs["data"][3]))
    stats = RunningStats()
    for start in range(0, len(files), batch):
        data = np.concatenate([input_blob(read_image(f, "image"), mean_value, size, cb.imagenet_mean)
                               for f in files[start : start + batch]])
        stats.add(cb.encode(net, data, layer))
    values = bounds(stats, k)
    write_atomic(Path(output), format_bounds(values, decimals).encode())
    return ActRange(values, stats.mean, stats.std, len(files), Path(output))
