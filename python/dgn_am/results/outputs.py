"""Result files: the released name pattern, the .npz and image bytes, and saving one run's files together."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from ..common.files import write_atomic
from ..core.pixels import to_display, to_uint8


def result_stem(act_layer: str, unit: int, n_iters: int, L2: float, start_lr: float, seed: int) -> str:
    """act_max.py's name, e.g. ``fc8_0643_200_0.99_8.0__0``; a '/' in a layer name becomes '_'."""
    return f"{act_layer.replace('/', '_')}_{str(unit).zfill(4)}_{str(n_iters).zfill(2)}_{L2!r}_{start_lr!r}__{seed}"


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """An uncompressed .npz of ``arrays``, byte-identical for identical arrays.

    ``np.savez`` stamps each member with the current time, so two runs with the same result would
    differ in bytes; a fixed time makes a resumed sweep's files the same as an uninterrupted one's.
    Each member is serialized first and written whole, so its size is known and the zip headers are
    plain ones: a member streamed with ``force_zip64`` gets headers whose layout changed between
    Python 3.11 patch releases (the image's Debian 3.11.2 and a 3.11.7 wrote different bytes).
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    return buf.getvalue()


def encode_image(image_bgr: np.ndarray, fmt: str) -> bytes:
    """One blob image (3 x H x W BGR, mean-subtracted scale) as JPEG or PNG bytes, released convention."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(to_uint8(to_display(image_bgr))).save(buf, format=fmt)
    return buf.getvalue()


def result_files(directory: Path, stem: str, receptive_field: bool = False) -> dict[str, Path]:
    """The files ``save_result`` writes for ``stem`` (the manifest ``{stem}.json`` comes last, apart)."""
    paths = {"jpg": directory / f"{stem}.jpg", "png": directory / f"{stem}.png", "npz": directory / f"{stem}.npz"}
    if receptive_field:
        paths["rf_png"] = directory / f"{stem}_rf.png"
    return paths


def save_result(
    directory: Path, stem: str, code: np.ndarray, image: np.ndarray, activations: np.ndarray,
    receptive_field: tuple[int, int, int, int] | None = None,
) -> dict[str, Path]:
    """The image as JPEG (the released name) and PNG, and an .npz of code, image and activations.

    For a unit of a convolutional blob, ``{stem}_rf.png`` is also the crop of the image to the unit's
    receptive field (top, left, height, width), as the released hidden-unit montage shows it.
    """
    paths = result_files(directory, stem, receptive_field is not None)
    if receptive_field is not None:
        top, left, h, w = receptive_field
        write_atomic(paths["rf_png"], encode_image(image[0][:, top : top + h, left : left + w], "PNG"))
    write_atomic(paths["npz"], npz_bytes(code=code.astype(np.float32), image=image.astype(np.float32),
                                         activations=np.asarray(activations, dtype=np.float64)))
    write_atomic(paths["png"], encode_image(image[0], "PNG"))
    write_atomic(paths["jpg"], encode_image(image[0], "JPEG"))
    return paths
