"""Output file names (the released pattern) and atomic writes: a reader never sees half a file."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import InputError
from .images import to_display, to_uint8


def result_stem(act_layer: str, unit: int, n_iters: int, L2: float, start_lr: float, seed: int) -> str:
    """act_max.py's name, e.g. ``fc8_0643_200_0.99_8.0__0``; a '/' in a layer name becomes '_'."""
    return f"{act_layer.replace('/', '_')}_{str(unit).zfill(4)}_{str(n_iters).zfill(2)}_{L2!r}_{start_lr!r}__{seed}"


def ensure_writable_dir(path: Path) -> Path:
    """Create the output folder if needed and prove it takes a file, or raise InputError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".dgn-am-probe-"):
            pass
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise InputError(f"output directory {path} is not writable ({reason})") from None
    return path


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file 0600; give it the mode a plain open() would (0666 less the umask)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def encode_image(image_bgr: np.ndarray, fmt: str) -> bytes:
    """One blob image (3 x H x W BGR, mean-subtracted scale) as JPEG or PNG bytes, released convention."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(to_uint8(to_display(image_bgr))).save(buf, format=fmt)
    return buf.getvalue()


def save_result(
    directory: Path, stem: str, code: np.ndarray, image: np.ndarray, activations: np.ndarray,
    receptive_field: tuple[int, int, int, int] | None = None,
) -> dict[str, Path]:
    """The image as JPEG (the released name) and PNG, and an .npz of code, image and activations.

    For a unit of a convolutional blob, ``{stem}_rf.png`` is also the crop of the image to the unit's
    receptive field (top, left, height, width), as the released hidden-unit montage shows it.
    """
    paths = {"jpg": directory / f"{stem}.jpg", "png": directory / f"{stem}.png", "npz": directory / f"{stem}.npz"}
    if receptive_field is not None:
        top, left, h, w = receptive_field
        paths["rf_png"] = directory / f"{stem}_rf.png"
        write_atomic(paths["rf_png"], encode_image(image[0][:, top : top + h, left : left + w], "PNG"))
    buf = io.BytesIO()
    np.savez(buf, code=code.astype(np.float32), image=image.astype(np.float32),
             activations=np.asarray(activations, dtype=np.float64))
    write_atomic(paths["npz"], buf.getvalue())
    write_atomic(paths["png"], encode_image(image[0], "PNG"))
    write_atomic(paths["jpg"], encode_image(image[0], "JPEG"))
    return paths
