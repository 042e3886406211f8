"""Image conventions: the generator-to-net crop, the saved-image scale, and real start images.

Images inside the loop are Caffe blobs: float32, N x 3 x H x W, BGR, in the mean-subtracted pixel
scale. The generator's output is fed to the target net as it is: no mean is added or removed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import LIMITS, InputError, regular_file

#: The released code clipped saved images to this range before rescaling to [0, 1].
SAVE_RANGE = (-120.0, 120.0)


def crop_offset(outer: int, inner: int) -> int:
    """Top-left offset of a centred crop; (256 - 227) // 2 = 14, as the released code computed it."""
    if inner > outer:
        raise InputError(f"the generator's output ({outer} px) is smaller than the net's input ({inner} px)")
    return (outer - inner) // 2


def center_crop(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A copy of the centred ``size`` crop of a batch of images (N x C x H x W)."""
    top = crop_offset(images.shape[2], size[0])
    left = crop_offset(images.shape[3], size[1])
    return images[:, :, top : top + size[0], left : left + size[1]].copy()


def paste_center(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """A copy of ``outer`` with ``inner`` written over its centred crop (the inverse of ``center_crop``)."""
    out = outer.copy()
    top = crop_offset(outer.shape[2], inner.shape[2])
    left = crop_offset(outer.shape[3], inner.shape[3])
    out[:, :, top : top + inner.shape[2], left : left + inner.shape[3]] = inner
    return out


def to_display(image_bgr: np.ndarray) -> np.ndarray:
    """One blob image (3 x H x W, BGR) as H x W x 3 RGB in [0, 1], the released saved-image convention.

    BGR -> RGB, clip to [-120, 120], then map that range linearly onto [0, 1]. No mean is added back.
    """
    if image_bgr.ndim != 3 or image_bgr.shape[0] != 3:
        raise ValueError(f"expected a 3 x H x W image, got shape {image_bgr.shape}")
    rgb = np.transpose(image_bgr[::-1], (1, 2, 0)).astype(np.float64)
    lo, hi = SAVE_RANGE
    return (np.clip(rgb, lo, hi) - lo) / (hi - lo)


def to_uint8(display: np.ndarray) -> np.ndarray:
    """[0, 1] float image to 8 bits, rounding to nearest."""
    return np.clip(np.rint(display * 255.0), 0, 255).astype(np.uint8)


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


def encoder_input(rgb: np.ndarray, mean_bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A real image as the encoder's input blob (1 x 3 x H x W float32), as the released code built it.

    Resize to the net's input size (bilinear, on 8-bit pixels), RGB -> BGR, then subtract the centre
    crop of the ImageNet mean image (3 x 256 x 256, already BGR).
    """
    from PIL import Image

    resized = np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.BILINEAR), dtype=np.float32)
    data = np.transpose(resized, (2, 0, 1))[::-1][np.newaxis].copy()
    mean = center_crop(mean_bgr[np.newaxis].astype(np.float32), size)
    return (data - mean).astype(np.float32)
