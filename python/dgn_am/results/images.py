"""The one reader of user images: start images, act-range image folders, montages to compare."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..common.errors import LIMITS, InputError, regular_file

#: Images larger than this many pixels are refused before they are decoded: a small file can claim a
#: huge canvas (a decompression bomb), and no image this tool reads (a start image, a montage, an
#: image-folder entry) is anywhere near it.
MAX_PIXELS = 64_000_000


def read_image(path: Path, what: str = "image") -> np.ndarray:
    """Read an image file as H x W x 3 uint8 RGB, or raise InputError with one line naming it.

    The one reader of user images: it refuses non-regular files, files over the size limit and
    canvases over ``MAX_PIXELS`` (checked from the header, before any pixel is decoded).
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    regular_file(path, what, limit=LIMITS["image"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if width * height > MAX_PIXELS:
                    raise InputError(f"{what} {path} is {width}x{height} pixels, more than the "
                                     f"{MAX_PIXELS:,} this tool decodes (a decompression bomb?)")
                return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{what} {path} claims more pixels than this tool decodes (a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise InputError(f"{what} {path} is not a readable image (not a format Pillow knows)") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file can make a Pillow decoder raise almost anything
        raise InputError(f"{what} {path} is not a readable image ({exc.__class__.__name__})") from None


def load_rgb(path: Path) -> np.ndarray:
    """A start image (``--init_file``) as H x W x 3 uint8 RGB."""
    return read_image(path, "init image")
