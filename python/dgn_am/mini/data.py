"""The miniature dataset: ten shape classes drawn at 64x64 from a seed, in plain NumPy.

Each image is one shape (random colour, position, scale, rotation) over a low-contrast cluttered
background (a tint, a gradient, smooth noise and faint blobs). Shapes are drawn from signed distance
functions in the shape's own frame, so edges are anti-aliased the same way at every scale and angle.
A person names the class at a glance; a small convnet reaches high accuracy in minutes on a CPU.

Pixel convention (shared with the nets): datasets are uint8 RGB, N x 64 x 64 x 3; nets take float32
blobs N x 3 x 64 x 64, BGR, value = pixel - 128 (``to_blob`` / ``from_blob``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..core.pixels import Pixels

SIZE = 64
CLASSES: tuple[str, ...] = (
    "disc", "square", "triangle", "star", "cross", "ring", "stripes", "checkerboard", "crescent", "heart",
)
#: Each split draws from its own stream (SeedSequence entropy [seed, split id]), so they never share images.
SPLITS = {"train": 0, "heldout": 1}
#: The split sizes and the seed every shipped weight file was trained with (``train``), and the demo's evaluation reads.
DATA_SEED = 0
TRAIN_PER_CLASS = 1500
HELDOUT_PER_CLASS = 200
#: The value subtracted from every pixel in a blob (the "mean-subtracted scale" of the real nets).
PIXEL_MEAN = 128.0

_CHUNK = 512  # images drawn at once: bounds the float32 temporaries to a few tens of MB

# Pixel centres, in pixels.
_GRID = np.arange(SIZE, dtype=np.float32) + np.float32(0.5)


# --- shapes as signed distance functions in the shape frame (unit ~ the shape's radius) ------------


def _box(u: np.ndarray, v: np.ndarray, hu: float, hv: float) -> np.ndarray:
    return np.maximum(np.abs(u) - hu, np.abs(v) - hv)


def _disc(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.hypot(u, v) - 0.9


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _box(u, v, 0.72, 0.72)


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Equilateral, circumradius 1: inside all three edges (inradius 0.5).
    angles = np.deg2rad([-90.0, 30.0, 150.0])
    return np.max([u * np.cos(a) + v * np.sin(a) for a in angles], axis=0) - 0.5


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Five points: fold every point into the half-sector [0, a/2]; there the star is the side of the
    # line from the outer vertex (1, 0) to the inner vertex that faces the centre.
    a = 2 * np.pi / 5
    inner = 0.42
    psi = np.abs(np.mod(np.arctan2(v, u) + a / 2, a) - a / 2)
    r = np.hypot(u, v)
    qx, qy = r * np.cos(psi), r * np.sin(psi)
    ox, oy = 1.0, 0.0
    ix, iy = inner * np.cos(a / 2), inner * np.sin(a / 2)
    nx, ny = iy - oy, -(ix - ox)  # normal of the edge, pointing away from the centre
    norm = np.hypot(nx, ny)
    return ((qx - ox) * nx + (qy - oy) * ny) / norm


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.minimum(_box(u, v, 0.9, 0.28), _box(u, v, 0.28, 0.9))


def _ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.abs(np.hypot(u, v) - 0.68) - 0.2


def _stripes(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Four bars across a round window.
    period = 0.45
    t = np.mod(v + period / 4, period)
    bars = np.abs(t - period / 2) - period / 4
    return np.maximum(np.hypot(u, v) - 0.95, bars)


def _checkerboard(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # A 4 x 4 board of cells 0.4 wide; distance to the nearest cell edge, negative in the "on" cells.
    cell = 0.4
    cu, cv = u / cell, v / cell
    edge = np.minimum(np.abs(cu - np.rint(cu)), np.abs(cv - np.rint(cv))) * cell
    on = (np.floor(cu) + np.floor(cv)) % 2 == 0
    return np.maximum(_box(u, v, 0.8, 0.8), np.where(on, -edge, edge))


def _crescent(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.hypot(u, v) - 0.9, -(np.hypot(u - 0.42, v) - 0.72))


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # A diamond (square turned 45 degrees, tip down) with two discs on its upper edges.
    up = -v  # image rows grow downwards
    h, c = 0.5, -0.15
    a, b = (u + (up - c)) / np.sqrt(2), ((up - c) - u) / np.sqrt(2)
    diamond = np.maximum(np.abs(a), np.abs(b)) - h
    m = h / np.sqrt(2)
    left = np.hypot(u + m, up - c - m) - h
    right = np.hypot(u - m, up - c - m) - h
    return np.minimum(diamond, np.minimum(left, right))


_SDF: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "disc": _disc, "square": _square, "triangle": _triangle, "star": _star, "cross": _cross, "ring": _ring,
    "stripes": _stripes, "checkerboard": _checkerboard, "crescent": _crescent, "heart": _heart,
}
#: Largest rotation (radians) each class is drawn with: a heart stays upright, the rest turn freely.
_MAX_ROTATION = {name: np.pi for name in CLASSES} | {"heart": 0.6}


# --- drawing --------------------------------------------------------------------------------------------


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorized HSV -> RGB, all in [0, 1]; returns (..., 3)."""
    k = np.mod(np.stack([5.0 + h * 6, 3.0 + h * 6, 1.0 + h * 6], axis=-1), 6)
    return v[..., None] - v[..., None] * s[..., None] * np.clip(np.minimum(k, 4 - k), 0, 1)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _upsample_matrix(coarse: int) -> np.ndarray:
    """Bilinear interpolation from a coarse x coarse grid to SIZE (as a SIZE x coarse matrix)."""
    pos = (_GRID / SIZE) * (coarse - 1)
    lo = np.minimum(np.floor(pos).astype(int), coarse - 2)
    frac = pos - lo
    m = np.zeros((SIZE, coarse), dtype=np.float32)
    m[np.arange(SIZE), lo] = 1 - frac
    m[np.arange(SIZE), lo + 1] += frac
    return m


_UP5 = _upsample_matrix(5)


def _background(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cluttered low-contrast backgrounds (n x 64 x 64 x 3 float32) and their base colours (n x 3)."""
    gray = rng.uniform(40, 215, (n, 1))
    base = np.clip(gray + rng.uniform(-25, 25, (n, 3)), 0, 255)
    y, x = _GRID[:, None] / SIZE - 0.5, _GRID[None, :] / SIZE - 0.5
    theta = rng.uniform(0, 2 * np.pi, n)
    # A linear ramp across the image in a random direction (n x 64 x 64, within [-0.71, 0.71]).
    ramp = _f32(np.cos(theta))[:, None, None] * x + _f32(np.sin(theta))[:, None, None] * y
    img = _f32(base[:, None, None, :]) + _f32(rng.uniform(0, 40, (n, 1, 1, 1))) * _f32(ramp[..., None])
    coarse = rng.standard_normal((n, 3, 5, 5), dtype=np.float32) * _f32(rng.uniform(0, 10, (n, 1, 1, 1)))
    img += np.transpose(_UP5 @ coarse @ _UP5.T, (0, 2, 3, 1))
    for _ in range(3):  # faint blobs
        cy, cx = _f32(rng.uniform(0, SIZE, (2, n, 1, 1)))
        scale = _f32(-0.5 / rng.uniform(3, 10, (n, 1, 1)) ** 2)
        g = np.exp(((_GRID[:, None] - cy) ** 2 + (_GRID[None, :] - cx) ** 2) * scale)
        img += g[..., None] * _f32(rng.uniform(-25, 25, (n, 1, 1, 3)))
    return img, base


def _shape_colours(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Saturated colours at least 110 (RGB distance) away from each background's base colour."""
    n = len(base)
    colour = np.empty((n, 3))
    todo = np.arange(n)
    for _ in range(50):
        hsv = rng.uniform([0, 0.55, 0.45], [1, 1, 1], (len(todo), 3))
        colour[todo] = _hsv_to_rgb(hsv[:, 0], hsv[:, 1], hsv[:, 2]) * 255
        todo = todo[np.linalg.norm(colour[todo] - base[todo], axis=1) < 110]
        if not len(todo):
            break
    # The few left (mid-gray backgrounds meeting mid colours) get the colour's opposite brightness.
    colour[todo] = np.where(base[todo].mean(axis=1, keepdims=True) > 128, 20.0, 235.0)
    return colour


def _coverage(name: str, cx: np.ndarray, cy: np.ndarray, radius: np.ndarray, rot: np.ndarray,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anti-aliased coverage (n x 64 x 64 in [0, 1]) of shapes, and the pixels' shape-frame coordinates."""
    r = _f32(radius)[:, None, None]
    dx = _GRID[None, None, :] - _f32(cx)[:, None, None]
    dy = _GRID[None, :, None] - _f32(cy)[:, None, None]
    cos, sin = _f32(np.cos(rot))[:, None, None], _f32(np.sin(rot))[:, None, None]
    u, v = (cos * dx + sin * dy) / r, (-sin * dx + cos * dy) / r
    return np.clip(0.5 - _SDF[name](u, v) * r, 0, 1), u, v  # distance in px: a 1 px soft edge


def shape_mask(label: int, radius: float = 24.0, rotation: float = 0.0, center: tuple[float, float] = (32.0, 32.0),
               ) -> np.ndarray:
    """One class's shape alone: its coverage (64 x 64 float32 in [0, 1]), the geometry ``draw`` uses.

    ``center`` is (row, column) in pixels; ``rotation`` in radians.
    """
    one = np.ones(1)
    return _coverage(CLASSES[label], one * center[1], one * center[0], one * radius, one * rotation)[0][0]


def draw(label: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` images of class ``label`` as uint8 RGB, n x 64 x 64 x 3."""
    name = CLASSES[label]
    img, base = _background(n, rng)
    radius = rng.uniform(13, 25, n)
    cx = rng.uniform(0.85 * radius, SIZE - 0.85 * radius)
    cy = rng.uniform(0.85 * radius, SIZE - 0.85 * radius)
    rot = rng.uniform(-_MAX_ROTATION[name], _MAX_ROTATION[name], n)
    colour = _shape_colours(base, rng)
    shade = rng.uniform(-0.15, 0.15, (n, 2))  # a light direction across the shape

    alpha, u, v = _coverage(name, cx, cy, radius, rot)
    alpha = alpha[..., None]
    light = 1 + _f32(shade[:, 0, None, None]) * u + _f32(shade[:, 1, None, None]) * v
    fg = _f32(colour[:, None, None, :]) * light[..., None]
    img = alpha * fg + (1 - alpha) * img
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(3)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def make_split(split: str, n_per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A split of the dataset: images (uint8 RGB, N x 64 x 64 x 3) and labels (int64, N), class by class.

    Deterministic in (split, n_per_class, seed); every class is drawn from its own child stream.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    if n_per_class < 0:
        raise ValueError(f"n_per_class must be >= 0, got {n_per_class}")
    streams = np.random.SeedSequence([seed, SPLITS[split]]).spawn(len(CLASSES))
    images = np.empty((len(CLASSES) * n_per_class, SIZE, SIZE, 3), dtype=np.uint8)
    for label, stream in enumerate(streams):
        rng = np.random.default_rng(stream)
        for start in range(0, n_per_class, _CHUNK):
            count = min(_CHUNK, n_per_class - start)
            at = label * n_per_class + start
            images[at : at + count] = draw(label, count, rng)
    labels = np.repeat(np.arange(len(CLASSES), dtype=np.int64), n_per_class)
    return images, labels


# --- conversions and files ------------------------------------------------------------------------------


#: The miniature nets' pixel convention: BGR, pixel - 128 (the owner of the conversion is ``core.pixels``).
PIXELS = Pixels(PIXEL_MEAN)


def to_blob(images: np.ndarray) -> np.ndarray:
    """uint8 RGB N x H x W x 3 -> float32 BGR N x 3 x H x W, pixel - 128 (what the mini nets take)."""
    return PIXELS.to_blob(images)


def from_blob(blob: np.ndarray) -> np.ndarray:
    """The inverse of ``to_blob``: float32 BGR blobs back to uint8 RGB images (clipped, rounded)."""
    return PIXELS.to_rgb(blob)


def grid(images: np.ndarray, cols: int, pad: int = 2) -> np.ndarray:
    """Tile uint8 images (N x H x W x 3) into one image, ``cols`` to a row, white gaps of ``pad`` px."""
    n, h, w, _ = images.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, dtype=np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = im
    return out


def png_bytes(image: np.ndarray) -> bytes:
    """One uint8 RGB image as PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def write_folder(images: np.ndarray, labels: np.ndarray, directory: Path) -> list[Path]:
    """Write each image as ``NNNNN_<class>.png`` into ``directory`` (made if needed), atomically each.

    A folder of PNGs is what ``dgn-am act-range`` reads, and what a person looks at.
    """
    from ..common.files import write_atomic

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        path = directory / f"{i:05d}_{CLASSES[int(label)]}.png"
        write_atomic(path, png_bytes(image))
        paths.append(path)
    return paths


def export(directory: Path, split: str = "heldout", per_class: int | None = None, seed: int = DATA_SEED) -> int:
    """Write a split as a labelled image folder: ``directory/<class>/NNNNN.png``, one folder per class.

    The class folders are named by ``nets/mini/labels.txt`` (the order of ``CLASSES``), so ``dgn-am
    accuracy`` and ``topk`` read it as any user's labelled folder. The default size is the split's own
    (200 per class held out: the images E's recorded held-out accuracy was measured on). Returns the count.
    """
    from ..common.errors import InputError
    from ..common.files import ensure_writable_dir, write_atomic

    n = (HELDOUT_PER_CLASS if split == "heldout" else TRAIN_PER_CLASS) if per_class is None else per_class
    if split not in SPLITS:
        raise InputError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if n < 1:
        raise InputError(f"--per_class must be at least 1, got {n}")
    root = ensure_writable_dir(Path(directory))
    images, labels = make_split(split, n, seed)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / CLASSES[int(label)]
        folder.mkdir(exist_ok=True)
        write_atomic(folder / f"{i:05d}.png", png_bytes(image))
    return len(images)


def main(argv: list[str] | None = None) -> int:
    """``python -m dgn_am.mini.data export DIR [--split heldout] [--per_class N] [--seed S]``."""
    import sys

    from ..common.cliargs import ArgumentParser
    from ..common.errors import InputError

    parser = ArgumentParser(prog="python -m dgn_am.mini.data", description="The miniature model's image set.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export", help="write a split as a folder per class (named as nets/mini/labels.txt)")
    p.add_argument("directory", type=Path, help="where the class folders go (made if needed)")
    p.add_argument("--split", default="heldout", help="heldout (default) or train")
    p.add_argument("--per_class", type=int, default=None,
                   help=f"images per class (default: the split's own, {HELDOUT_PER_CLASS} held out, "
                        f"{TRAIN_PER_CLASS} train)")
    p.add_argument("--seed", type=int, default=DATA_SEED, help=f"dataset seed (default {DATA_SEED}, the nets')")
    a = parser.parse_args(argv)
    try:
        count = export(a.directory, a.split, a.per_class, a.seed)
    except InputError as exc:
        print(f"dgn-am: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {count} images of the {a.split} split into {a.directory} ({len(CLASSES)} class folders)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
