"""Pixel conventions, in one place: blobs, crops, the saved-image scale, and real images as net input.

Images inside the loop are Caffe blobs: float32, N x 3 x H x W, BGR, in the mean-subtracted pixel
scale. The generator's output is fed to the target net as it is: no mean is added or removed. A real
image (uint8 RGB, H x W x 3) becomes a blob through ``Pixels`` (channel order and mean, as pycaffe's
``io.Transformer`` holds them); a blob becomes a saved image through ``to_display`` (the released range).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..common.errors import InputError

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


@dataclass(frozen=True, eq=False)
class Pixels:
    """A net's pixel convention: blob = BGR(image) - mean, in float32, N x 3 x H x W.

    ``mean`` is a constant (the miniature nets: 128) or a BGR mean image (3 x H' x W', CaffeNet's
    ImageNet mean at 256 x 256) whose centred crop of the blob's size is subtracted, as the released
    code did. The subtraction is float32, so a blob made here has the bits the released code made.
    """

    mean: float | np.ndarray = 0.0

    def mean_of(self, size: tuple[int, int]) -> np.ndarray | np.float32:
        """What is subtracted from a blob of spatial ``size``: the constant, or the mean image's centre crop."""
        if np.ndim(self.mean) == 0:
            return np.float32(self.mean)
        return center_crop(np.asarray(self.mean)[np.newaxis].astype(np.float32), size)

    def to_blob(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 RGB images (N x H x W x 3) as the net's input blob."""
        if rgb.ndim != 4 or rgb.shape[-1] != 3:
            raise ValueError(f"expected N x H x W x 3 images, got shape {rgb.shape}")
        data = np.ascontiguousarray(rgb[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
        return (data - self.mean_of(rgb.shape[1:3])).astype(np.float32)

    def to_rgb(self, blob: np.ndarray) -> np.ndarray:
        """The inverse of ``to_blob``: blobs back to uint8 RGB images, the mean added back (clipped, rounded)."""
        if blob.ndim != 4 or blob.shape[1] != 3:
            raise ValueError(f"expected N x 3 x H x W blobs, got shape {blob.shape}")
        rgb = (blob + self.mean_of(blob.shape[2:4]))[:, ::-1].transpose(0, 2, 3, 1)
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def encoder_input(rgb: np.ndarray, mean_bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A real image as the encoder's input blob (1 x 3 x H x W float32), as the released code built it.

    Resize to the net's input size (bilinear, on 8-bit pixels), RGB -> BGR, then subtract the centre
    crop of the ImageNet mean image (3 x 256 x 256, already BGR).
    """
    from PIL import Image

    resized = np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.BILINEAR), dtype=np.uint8)
    return Pixels(mean_bgr).to_blob(resized[np.newaxis])
