"""Output file names (the released pattern) and atomic writes: a reader never sees half a file."""

from __future__ import annotations

import errno
import io
import os
import stat
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .errors import InputError
from .images import to_display, to_uint8


def result_stem(act_layer: str, unit: int, n_iters: int, L2: float, start_lr: float, seed: int) -> str:
    """act_max.py's name, e.g. ``fc8_0643_200_0.99_8.0__0``; a '/' in a layer name becomes '_'."""
    return f"{act_layer.replace('/', '_')}_{str(unit).zfill(4)}_{str(n_iters).zfill(2)}_{L2!r}_{start_lr!r}__{seed}"


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on the device"
    if exc.errno == errno.EFBIG:
        return "file too large: a file-size limit (ulimit -f) or the file system's"
    if exc.errno == errno.ELOOP:
        return "a symlink loop"
    if exc.errno == errno.ENOTDIR:
        return "Not a directory: a part of its path is a file"
    return exc.strerror or exc.__class__.__name__


def _kind(path: Path, what: str, verb: str = "is not writable") -> str:
    """'absent', 'dir', 'file', 'symlink' (to nothing, or a loop) or 'other'; an InputError, never an OSError."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "absent"
    except OSError as exc:  # a name too long, a path through a file
        raise InputError(f"{what} {path} {verb} ({_reason(exc)})") from None
    if stat.S_ISLNK(st.st_mode):
        try:
            st = os.stat(path)
        except OSError:
            return "symlink"
    return "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"


def ensure_writable_dir(path: Path, what: str = "output directory") -> Path:
    """Create the output folder if needed and prove it takes a file, or raise InputError."""
    path = Path(path)
    kind = _kind(path, what)
    if kind == "symlink":
        raise InputError(f"{what} {path} is a broken symlink or a symlink loop")
    if kind in ("file", "other"):
        raise InputError(f"{what} {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".dgn-am-probe-"):
            pass
    except OSError as exc:
        raise InputError(f"{what} {path} is not writable ({_reason(exc)})") from None
    return path


def name_max(folder: Path) -> int:
    """The longest file name the folder's file system takes (255 on every common one)."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


#: write_atomic's temporary is ``.NAME.XXXXXXXX.tmp``: that many characters more than NAME.
TEMP_EXTRA = 14


def check_destination(path: Path, inputs: Iterable[Path] = (), kind: str = "file") -> None:
    """``path`` can be written atomically: absent or a plain file, not an input, its name not too long.

    A folder or a symlink in the way is refused rather than replaced (the symlink may point at
    something the user keeps), and so is any path that is the same file as one of ``inputs``.
    """
    path = Path(path)
    limit = name_max(path.parent if path.parent.is_dir() else Path("."))
    if len(path.name.encode()) + (TEMP_EXTRA if kind == "file" else 0) > limit:
        raise InputError(f"the output name {path.name[:40]}... is too long for the file system "
                         f"({len(path.name.encode())} bytes; at most {limit - TEMP_EXTRA})")
    if path.is_symlink():
        raise InputError(f"{path} is a symlink; dgn-am never replaces one by a file: remove it or write elsewhere")
    found = _kind(path, "output", "cannot be written")
    if found != "absent":
        if kind == "file" and found != "file":
            raise InputError(f"{path} is in the way: it is a folder or a special file, not a result file")
        if kind == "folder" and found != "dir":
            raise InputError(f"{path} is in the way: it is a file, not a folder of frames")
        for source in inputs:
            try:
                same = os.path.samefile(path, source)
            except OSError:
                same = False
            if same:
                raise InputError(f"{path} is also an input ({source}); dgn-am never writes over its inputs")


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename over ``path``.

    A failure part-way (a full disk, a file-size limit) leaves no partial file and becomes one
    InputError naming the file; a folder or symlink at ``path`` is refused, never replaced.
    """
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        check_destination(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"cannot write {path} ({_reason(exc)})") from None
    try:
        # mkstemp makes the file 0600; give it the mode a plain open() would (0666 less the umask)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"cannot write {path} ({_reason(exc)}); nothing was left half-written") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
