"""The one exception the CLI turns into a single clear line, and the one way user-named files are read.

Every file a user names (a prototxt, a caffemodel, a bound file, a label list, a sweep config, an image)
goes through ``regular_file`` and ``read_input``: a FIFO or a device (``/dev/zero``) would hang or fill
memory, a symlink loop or a folder would raise deep inside a library, and a file far larger than any real
input of its kind is a mistake, not data. Each of those becomes an ``InputError`` naming the file.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

#: Upper limits on what a user-named file of each kind may hold; far above any real input.
MiB = 1 << 20
LIMITS = {
    "text": 64 * MiB,  # prototxts, bound files (conv3's 64,896 values are 0.3 MB), label lists, configs
    "weights": (1 << 31) - 1,  # Caffe's own protobuf read limit (INT_MAX bytes, scripts/caffe-patches/0001)
    "image": 256 * MiB,
}


class InputError(Exception):
    """Bad user input (a file, a flag, a model) found before Caffe could abort on it.

    The message is one line: it names the offending thing and, where there is one, the fix.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symlink loop"
    if exc.errno == errno.ENAMETOOLONG:
        return "its name is too long"
    return exc.strerror or exc.__class__.__name__


def regular_file(path: Path, what: str, hint: str = "", limit: int | None = None) -> Path:
    """``path`` if it is an existing regular file (after symlinks) no larger than ``limit`` bytes.

    Anything else (missing, a folder, a FIFO, a device, a socket, a symlink loop, unreadable, too large)
    is an InputError saying which file (``what``) and why.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist{hint}") from None
    except OSError as exc:
        raise InputError(f"{what} {path} cannot be read ({_reason(exc)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what} {path} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{what} {path} is not a regular file (a FIFO, device or socket cannot be read safely)")
    if limit is not None and st.st_size > limit:
        raise InputError(f"{what} {path} is {st.st_size:,} bytes, more than the {limit:,} such a file may hold")
    if not os.access(path, os.R_OK):
        raise InputError(f"{what} {path} cannot be read (permission denied)")
    return Path(path)


def read_input(path: Path, what: str, binary: bool = False, hint: str = "", limit: int | None = None) -> str | bytes:
    """A user-named file's contents (text is UTF-8), or an InputError saying which file and why not.

    ``limit`` defaults to the text or weights limit of ``LIMITS``; the read itself stops one byte past
    it, so a file that grows while it is read cannot run away either.
    """
    limit = limit if limit is not None else LIMITS["weights" if binary else "text"]
    regular_file(path, what, hint, limit)
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise InputError(f"{what} {path} cannot be read ({_reason(exc)})") from None
    if len(data) > limit:
        raise InputError(f"{what} {path} is larger than the {limit:,} bytes such a file may hold")
    if binary:
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {path} is not UTF-8 text (byte {exc.start} cannot be decoded)") from None
