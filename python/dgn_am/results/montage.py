"""Labelled montages in the layout of the authors' released example images, drawn with Pillow.

The released montages were made with ImageMagick: each picture got a label strip appended below it
(``convert -splice 0x10`` then a 30-point ``label:``), then ``montage -geometry +1+1`` put every
picture in a cell with 1 px of white around it, 5 (example 3: 10) cells to a row, and example 3 was
also ``-trim``-med. Measured on the released JPEGs (tile boxes found from the white gaps, text boxes
from the dark pixels of each strip):

- background and borders are white; a cell is ``1 + tile + 40 + 1`` px tall and ``1 + tile + 1`` wide;
- the label is black, about 30 px type (capitals 21-22 px tall), centred under the tile, its baseline
  32 px below the tile's bottom edge;
- example 2 is 1146 px wide, one more than 5 x 229: its last label ("doorway/outdoor", 225 px of text)
  made that column one px wider, and its tile sits one px further right. Its geometry says so
  (``extra_left``), so a result is laid out, and both images are split, at the released positions;
- example 3 shows 31 frames in 10 columns: iterations 0..29 with their activation, then the saved
  final image (act_max.py wrote it as frame 030 too) with no label. A row with no label has no strip
  (3 x 269 + 229 = 1036 px); the released image is 1041 px tall because ``-trim`` of a JPEG keeps the
  ringing below the last tile, so 5 white rows are padded at the bottom.

Labels here use Pillow's embedded scalable font (``ImageFont.load_default(size=30)``, Aileron), not
ImageMagick's Helvetica, so label pixels differ from the released ones; ``compare`` therefore scores
the tile boxes only. A label too wide for its cell is drawn smaller until it fits.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.files import write_atomic
from ..core.pixels import to_uint8

BACKGROUND = (255, 255, 255)
INK = (0, 0, 0)


@dataclass(frozen=True)
class Box:
    """A rectangle of the montage, in pixels: ``image[top:top + height, left:left + width]``."""

    top: int
    left: int
    height: int
    width: int

    def crop(self, image: np.ndarray) -> np.ndarray:
        return image[self.top : self.top + self.height, self.left : self.left + self.width]


@dataclass(frozen=True)
class Geometry:
    """Where the tiles and labels of a montage go.

    ``count`` tiles of ``tile_h`` x ``tile_w`` px, ``columns`` to a row, each framed by ``border`` px of
    background, the first ``labelled`` of them with a ``label_h`` px strip beneath. ``size`` (width,
    height) is the released montage's size for ``count`` tiles; it may exceed the regular layout
    (example 3's trim residue), which is then padded with background at the right and bottom.
    ``extra_left[c]`` widens column ``c`` on its left (example 2's last column).
    """

    name: str
    tile_h: int
    tile_w: int
    count: int
    size: tuple[int, int]
    columns: int = 5
    labelled: int | None = None  # None: every tile
    border: int = 1
    label_h: int = 40
    font_size: int = 30
    baseline: int = 32  # from the top of the label strip
    extra_left: tuple[int, ...] = ()

    def _extra(self, column: int) -> int:
        return sum(self.extra_left[: column + 1])

    def layout(self, has_label: list[bool]) -> tuple[tuple[int, int], list[Box], list[Box | None]]:
        """Canvas size (width, height), tile boxes and label strips for tiles with/without labels.

        With the released number of tiles the canvas is the released ``size``; with another number
        (a shortened run) it is just large enough.
        """
        n = len(has_label)
        cell_w = self.tile_w + 2 * self.border
        rows = [has_label[i : i + self.columns] for i in range(0, n, self.columns)]
        tiles: list[Box] = []
        strips: list[Box | None] = []
        top = 0
        for row in rows:
            strip_h = self.label_h if any(row) else 0
            for c, labelled in enumerate(row):
                left = c * cell_w + self._extra(c) + self.border
                tiles.append(Box(top + self.border, left, self.tile_h, self.tile_w))
                strips.append(Box(top + self.border + self.tile_h, left, strip_h, self.tile_w) if labelled else None)
            top += 2 * self.border + self.tile_h + strip_h
        columns = min(n, self.columns)
        natural = (columns * cell_w + self._extra(columns - 1) if columns else 0, top)
        if n == self.count:
            if natural[0] > self.size[0] or natural[1] > self.size[1]:
                raise ValueError(f"{self.name}: the layout {natural} does not fit the released size {self.size}")
            return self.size, tiles, strips
        return natural, tiles, strips

    def released_layout(self) -> tuple[tuple[int, int], list[Box], list[Box | None]]:
        """The layout of the released montage itself: ``count`` tiles, the first ``labelled`` labelled."""
        labelled = self.count if self.labelled is None else self.labelled
        return self.layout([i < labelled for i in range(self.count)])


def grid_geometry(name: str, tile: int, count: int, columns: int, label_h: int = 22, font_size: int = 15,
                  baseline: int = 16) -> Geometry:
    """A regular layout of ``count`` square ``tile`` px tiles, ``columns`` to a row, each with a small label."""
    probe = Geometry(name, tile, tile, 0, (0, 0), columns=columns, label_h=label_h, font_size=font_size,
                     baseline=baseline)
    size, _, _ = probe.layout([True] * count)  # count 0 never matches: the natural size of the layout
    return Geometry(name, tile, tile, count, size, columns=columns, label_h=label_h, font_size=font_size,
                    baseline=baseline)


#: The released example montages, measured from the JPEGs at the pinned release commit.
RELEASED_GEOMETRY: dict[str, Geometry] = {
    g.name: g
    for g in (
        Geometry("example1", 227, 227, 5, (1145, 269)),
        Geometry("example2", 227, 227, 5, (1146, 269), extra_left=(0, 0, 0, 0, 1)),
        Geometry("example3", 227, 227, 31, (2290, 1041), columns=10, labelled=30),
        Geometry("example4", 163, 163, 5, (825, 205)),
        Geometry("example5", 224, 224, 5, (1130, 266)),
    )
}


def _font(size: int):  # noqa: ANN202 - a Pillow font object
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def render(tiles: list[np.ndarray], labels: list[str], geometry: Geometry) -> np.ndarray:
    """The montage as H x W x 3 uint8 RGB: tiles (H x W x 3 float RGB in [0, 1]) with labels beneath.

    An empty label leaves its tile unlabelled (example 3's last frame).
    """
    from PIL import Image, ImageDraw

    if len(tiles) != len(labels):
        raise ValueError(f"{len(tiles)} tiles but {len(labels)} labels")
    if not tiles:
        raise ValueError("a montage needs at least one tile")
    for k, tile in enumerate(tiles):
        if tile.shape != (geometry.tile_h, geometry.tile_w, 3):
            raise ValueError(f"tile {k + 1} has shape {tile.shape}, the {geometry.name} layout needs "
                             f"{(geometry.tile_h, geometry.tile_w, 3)}")
    (width, height), boxes, strips = geometry.layout([bool(label) for label in labels])
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    for tile, box in zip(tiles, boxes, strict=True):
        canvas.paste(Image.fromarray(to_uint8(tile)), (box.left, box.top))
    draw = ImageDraw.Draw(canvas)
    room = geometry.tile_w + 2 * geometry.border
    for label, strip in zip(labels, strips, strict=True):
        if strip is None:
            continue
        size = geometry.font_size
        font = _font(size)
        while size > 8 and font.getlength(label) > room:
            size -= 1
            font = _font(size)
        draw.text((strip.left + geometry.tile_w / 2, strip.top + geometry.baseline), label, fill=INK, font=font,
                  anchor="ms")
    return np.asarray(canvas)


def save(image: np.ndarray, path: Path) -> Path:
    """Write the montage atomically, as JPEG or PNG by the suffix.

    JPEG uses quality 92 with 4:2:0 chroma, the quantization the released montages carry.
    """
    from PIL import Image

    path = Path(path)
    suffix = path.suffix.lower()
    buf = io.BytesIO()
    if suffix in (".jpg", ".jpeg"):
        Image.fromarray(image).save(buf, format="JPEG", quality=92, subsampling="4:2:0")
    elif suffix == ".png":
        Image.fromarray(image).save(buf, format="PNG")
    else:
        raise ValueError(f"montage file {path} must end in .jpg, .jpeg or .png")
    write_atomic(path, buf.getvalue())
    return path
