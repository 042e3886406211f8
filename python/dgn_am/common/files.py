"""Files as every layer handles them: the one hasher, the one atomic writer, and what may stand where an output goes.

Hashing serves model checksums, released-file checks and download verification; ``write_atomic`` means
a reader never sees half a file, and a full disk leaves nothing half-written.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .errors import InputError

CHUNK = 1 << 22  # 4 MiB: a 233 MB caffemodel in about 60 reads, without holding it in memory


def hash_file(path: Path | str, algo: str = "sha256") -> str:
    """The hex digest of ``path``'s bytes under ``algo`` (any name ``hashlib.new`` knows: sha256, sha1)."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


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
