"""What the downloader trusts and unpacks: the record of first-seen digests, and archive members.

Files without a published hash are trusted on first use: their sha256 goes into ``<nets>/manifest.json``
(``Record``) and later downloads must match it. From an archive only the wanted members are streamed
out, each checked against that record, and a member with an absolute path or '..' is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ..common.errors import InputError, read_input
from ..common.files import write_atomic
from ..common.paths import shown
from .catalogue import DownloadError, Entry, Member

MANIFEST_NAME = "manifest.json"
CHUNK = 1 << 20
Progress = Callable[[str, str, int, "int | None"], None]


def reason(exc: BaseException) -> str:
    """One line for an error from the network or an archive (an HTTP status, a URL error, else its text)."""
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


class Record:
    """sha256 of files without a published hash, recorded the first time they are seen."""

    def __init__(self, nets_dir: Path) -> None:
        self.path = nets_dir / MANIFEST_NAME
        self.data: dict[str, str] = {}
        if self.path.exists() or self.path.is_symlink():
            try:
                loaded = json.loads(read_input(self.path, "download record"))
            except (InputError, ValueError) as exc:
                raise DownloadError(f"cannot read {self.path}: {exc}; fix or delete it") from None
            if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
                raise DownloadError(f"{self.path} is not a JSON object of path -> sha256; fix or delete it")
            self.data = dict(loaded)

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def record(self, key: str, digest: str) -> None:
        """Store a digest and rewrite the manifest atomically (temp file + os.replace)."""
        self.data[key] = digest
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, (json.dumps(self.data, indent=2, sort_keys=True) + "\n").encode())


def expected_digest(entry: Entry, manifest: Record) -> tuple[str, str | None, bool]:
    """(algorithm, expected digest or None, whether the digest is published)."""
    if entry.sha1:
        return "sha1", entry.sha1, True
    if entry.sha256:
        return "sha256", entry.sha256, True
    return "sha256", manifest.get(entry.dest), False


def mismatch(name: str, algo: str, expected: str, got: str, published: bool, manifest: Record) -> str:
    where = "published" if published else f"recorded in {manifest.path} on first download"
    hint = (
        "the download is corrupt or the file changed upstream; it was deleted, try again"
        if published
        else f"if the upstream file legitimately changed, delete the '{name}' entry from {manifest.path}"
    )
    return f"checksum mismatch for {name}: expected {algo} {expected} ({where}) but got {got}; {hint}"


# --- archives ---------------------------------------------------------------------------------


def _safe_member_name(name: str) -> bool:
    """Reject absolute paths and parent references: such members are never trusted."""
    posix = name.replace("\\", "/")
    p = PurePosixPath(posix)
    return not (p.is_absolute() or posix.startswith("/") or ".." in p.parts or (posix[1:2] == ":"))


def _matches(name: str, suffix: str) -> bool:
    name = name.replace("\\", "/")
    return name == suffix or name.endswith("/" + suffix)


def _pick(names: Iterable[str], member: Member, archive: Path) -> str | None:
    """The one archive member for ``member``; None when there is none."""
    found = sorted({n for n in names if _matches(n, member.suffix)})
    for name in found:
        if not _safe_member_name(name):
            raise DownloadError(
                f"refusing unsafe member '{name}' in {shown(archive)} (absolute path or '..')"
            )
    if len(found) > 1:
        raise DownloadError(
            f"{shown(archive)} holds several files ending in '{member.suffix}' ({', '.join(found)}); "
            f"extract the right one to {member.dest} by hand"
        )
    return found[0] if found else None


def _write_member(
    source: BinaryIO,
    size: int | None,
    member: Member,
    nets_dir: Path,
    manifest: Record,
    progress: Progress | None,
) -> Path:
    """Stream one member to a temp file beside its destination, check it, move it into place."""
    dest = nets_dir / member.dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        done = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(CHUNK):
                out.write(chunk)
                h.update(chunk)
                done += len(chunk)
                if progress:
                    progress("extract", member.dest, done, size)
        got = h.hexdigest()
        expected = manifest.get(member.dest)
        if expected is not None and got != expected:
            raise DownloadError(mismatch(member.dest, "sha256", expected, got, False, manifest))
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if expected is None:
        manifest.record(member.dest, got)
    if progress:
        progress("done", member.dest, done, done)
    return dest


def extract(
    archive: Path, wanted: Sequence[Member], nets_dir: Path, manifest: Record, progress: Progress | None
) -> None:
    """Extract only the wanted members, each streamed; nothing else in the archive is written."""
    name = archive.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                infos = {i.filename: i for i in zf.infolist() if not i.is_dir()}
                chosen = _choose(infos, wanted, archive)
                for member, key in chosen:
                    with zf.open(infos[key]) as src:
                        _write_member(src, infos[key].file_size, member, nets_dir, manifest, progress)
        else:
            with tarfile.open(archive, "r:*") as tf:
                tinfos = {i.name: i for i in tf.getmembers() if i.isfile()}
                tchosen = _choose(tinfos, wanted, archive)
                for member, key in tchosen:
                    src = tf.extractfile(tinfos[key])
                    if src is None:
                        raise DownloadError(f"cannot read '{key}' in {shown(archive)}")
                    with src:
                        _write_member(src, tinfos[key].size, member, nets_dir, manifest, progress)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise DownloadError(
            f"cannot extract from {shown(archive)}: {reason(exc)}; delete it and run the download again"
        ) from exc


def _choose(infos: dict, wanted: Sequence[Member], archive: Path) -> list[tuple[Member, str]]:
    chosen: list[tuple[Member, str]] = []
    absent: list[str] = []
    for member in wanted:
        key = _pick(infos, member, archive)
        if key is None:
            absent.append(member.suffix)
        else:
            chosen.append((member, key))
    if absent:
        raise DownloadError(
            f"{shown(archive)} has no member ending in {', '.join(repr(a) for a in absent)}; "
            "the archive's layout changed or it is not the expected file"
        )
    return chosen
