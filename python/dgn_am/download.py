"""Catalogue and downloader for the pretrained models and released data DGN-AM needs.

The models are large binaries published by third parties; they are not in the
repository, so users fetch them once into a ``nets`` folder. This module knows where
each file comes from, how to check it, and where it goes. It never prints: progress is
reported through an optional callback so the CLI can draw a bar (or not).

Public API
----------
``GROUPS: dict[str, tuple[Entry, ...]]``
    Named selections of the catalogue: ``caffenet``, ``googlenet``, ``generators``,
    ``places205``, ``released`` and ``all``.
``download(groups, nets_dir, progress=None, url_map=None, timeout=60.0) -> list[Path]``
    Fetch (or skip, when present and verified) every entry of the named groups and
    return the final files, all of which exist and are verified on return.
``download_entries(entries, nets_dir, progress=None, url_map=None, timeout=60.0) -> list[Path]``
    The same for an explicit list of :class:`Entry` (used by tests with a local server).
``group_files(groups, nets_dir) -> list[Path]``
    The final files the groups provide, without touching the network.
``missing(paths) -> list[Path]`` and ``describe_missing(paths) -> str``
    Which of the given files are absent, and a one-line message telling the user what to do.
``DownloadError``
    Raised for every failure; its message is a single line meant for the user.
``Entry``, ``Member``
    Catalogue records (plain frozen dataclasses).

Progress callback: ``progress(event, name, done, total)`` where ``name`` is a path
relative to ``nets_dir`` and ``event`` is one of ``skip`` (already present and verified),
``start`` (a response began; ``done`` counts bytes resumed from a ``.part``), ``progress``
(bytes so far), ``retry`` (the transfer broke; trying again or the next mirror),
``verify`` (hashing a finished file), ``done`` (file in place) and ``extract`` (bytes of an
archive member written). ``total`` is ``None`` when the server does not say.

Checks: files with a published hash (sha1 or sha256) are verified against it. Files
without one (the generator zip, the Places tarball and what is extracted from them) are
trusted on first use: their sha256 is recorded in ``<nets>/manifest.json`` and later
downloads must match it. Downloads go to ``<dest>.part`` (resumed with an HTTP Range
request when one is left over) and are moved into place atomically only once verified.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .errors import InputError, read_input
from .hashing import hash_file
from .outputs import check_destination, ensure_writable_dir, write_atomic

Progress = Callable[[str, str, int, "int | None"], None]
UrlMap = Callable[[str], str]

MANIFEST_NAME = "manifest.json"
DOWNLOADS_DIR = "downloads"
CHUNK = 1 << 20
# How many times one URL is tried again after a transfer that broke off mid-way
# (each retry resumes where the last one stopped); then the next mirror is tried.
RETRIES_PER_URL = 3
USER_AGENT = "dgn-am-download/0.1"


class DownloadError(InputError):
    """A download or check failed; the message is one line meant for the user."""


@dataclass(frozen=True)
class Member:
    """A file to take out of an archive: the member whose path ends with ``suffix``."""

    suffix: str  # e.g. "fc6/generator.caffemodel"; matched at a path-component boundary
    dest: str  # where it goes, relative to the nets folder (POSIX separators)


@dataclass(frozen=True)
class Entry:
    """One downloadable file: tried URLs in order, its destination and how to check it.

    An entry with ``members`` is an archive (``.zip`` or ``.tar.gz``) kept under
    ``downloads/``; its products are the extracted members, not the archive itself.
    """

    dest: str  # relative to the nets folder (POSIX separators)
    urls: tuple[str, ...]
    sha1: str | None = None
    sha256: str | None = None
    members: tuple[Member, ...] = ()

    @property
    def outputs(self) -> tuple[str, ...]:
        """The files this entry provides to the rest of the project."""
        return tuple(m.dest for m in self.members) if self.members else (self.dest,)


# --------------------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------------------

CAFFE_BASE = "http://dl.caffe.berkeleyvision.org/"
DEEPSIM_PRIMARY = (
    "https://lmb.informatik.uni-freiburg.de/resources/binaries/"
    "arxiv2016_alexnet_inversion_with_gans/release_deepsim_v0.zip"
)
DEEPSIM_MIRROR = "http://s.anhnguyen.me/release_deepsim_v0.zip"
DEEPSIM_URLS = (DEEPSIM_PRIMARY, DEEPSIM_MIRROR)  # tried in this order
PLACES_URL = "http://places.csail.mit.edu/model/placesCNN.tar.gz"
RELEASED_REPO = "Evolving-AI-Lab/synthesizing"
RELEASED_COMMIT = "eb7f2e7c6a59476e6dd87eec6e66e847f8ad5a58"
RELEASED_BASE = f"https://raw.githubusercontent.com/{RELEASED_REPO}/{RELEASED_COMMIT}/"

# sha256 of the files the original code released at RELEASED_COMMIT (path in that repo).
RELEASED_SHA256: dict[str, str] = {
    "act_range/1x/fc6.txt": "39040cecb2292fbe544547e001b98e953f9d7a246ed241b01e77ed852315ac3b",
    "act_range/1x/pool5.txt": "231de678317132a459a1a14f2e58071f6d02731ce40252b5609ad63fe1d36808",
    "act_range/2x/fc6.txt": "2d69ff42fd36b74b710c8263e18605b405fb1c3fe0e267ef2a65436dc344857a",
    "act_range/2x/pool5.txt": "36d49686fc1ca67974c304b84ac0f1018ed0b4670c00477275c38186e5493c85",
    "act_range/3x/conv5.txt": "fb9cb107e64e85389ed8526927386db64193f9a683a1fcc93c4d9e692086515c",
    "act_range/3x/fc6.txt": "615c088ea5beff9c1cd67fe643d8daa5ea7370cb93a70656951b88194a7c65cc",
    "act_range/3x/fc7.txt": "bae31fe48c26733a09fb61424d499cdcddcf9dc02637523605452e98ce971b41",
    "examples/example1.jpg": "c8eb3e6e516572410249ebb219ce674d47d9bfc157ad1318e345aabd84755179",
    "examples/example2.jpg": "ab0cf5d8ae0bb9ab2f9b20e291b882d7c10eae0d18fb2c59cf7e9d2c62e38151",
    "examples/example3.jpg": "95a9fb159cdcff1bf89d001da21a2fa36eb8307f27f45794050550766a45dfbd",
    "examples/example4.jpg": "3de8e698194df898cbc7a01e2355d7a9c78e985fa8b32a753efa135c78ffdb42",
    "examples/example5.jpg": "fe48a62122c88669d9c3bc145c9bad1efaab4a1762e5f4fb2606282b3dfa2df0",
    "images/red_pepper.jpg": "7e2c8cf115cb23fff9f02471cf4ce15361417382f48d056ad064371f84e1fa0d",
    "misc/categoryIndex_places205.txt": "8271d045edeb578fc1d824968e16cc98ada32cbc960dd8a9b2f9b835b7625d18",
    "misc/synset_words.txt": "acf75ef0abe89694b19056e0796401068b459c457baa30335f240c7692857355",
}

CAFFENET = Entry(
    dest="caffenet/bvlc_reference_caffenet.caffemodel",
    urls=(CAFFE_BASE + "bvlc_reference_caffenet.caffemodel",),
    sha1="4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46",
)
GOOGLENET = Entry(
    dest="googlenet/bvlc_googlenet.caffemodel",
    urls=(CAFFE_BASE + "bvlc_googlenet.caffemodel",),
    sha1="405fc5acd08a3bb12de8ee5e23a96bec22f08204",
)
GENERATORS = Entry(
    dest=f"{DOWNLOADS_DIR}/release_deepsim_v0.zip",
    urls=DEEPSIM_URLS,
    members=tuple(
        Member(f"{layer}/generator.caffemodel", f"generators/{layer}/generator.caffemodel")
        for layer in ("fc6", "fc7", "pool5")
    ),
)
PLACES205 = Entry(
    dest=f"{DOWNLOADS_DIR}/placesCNN.tar.gz",
    urls=(PLACES_URL,),
    members=(Member("places205CNN_iter_300000.caffemodel", "placesCNN/places205CNN_iter_300000.caffemodel"),),
)
RELEASED = tuple(
    Entry(dest=f"released/{path}", urls=(RELEASED_BASE + path,), sha256=digest)
    for path, digest in RELEASED_SHA256.items()
)

GROUPS: dict[str, tuple[Entry, ...]] = {
    "caffenet": (CAFFENET,),
    "googlenet": (GOOGLENET,),
    "generators": (GENERATORS,),
    "places205": (PLACES205,),
    "released": RELEASED,
}
GROUPS["all"] = tuple(e for name in list(GROUPS) for e in GROUPS[name])


def entries_for(groups: Iterable[str]) -> list[Entry]:
    """The catalogue entries of the named groups, in order, each once."""
    seen: dict[str, Entry] = {}
    for group in groups:
        if group not in GROUPS:
            raise DownloadError(f"unknown download group '{group}'; choose from {', '.join(GROUPS)}")
        for entry in GROUPS[group]:
            seen.setdefault(entry.dest, entry)
    return list(seen.values())


def group_files(groups: Iterable[str], nets_dir: Path) -> list[Path]:
    """The final files the named groups provide (what the rest of the project loads)."""
    return [Path(nets_dir) / out for e in entries_for(groups) for out in e.outputs]


# --------------------------------------------------------------------------------------
# Telling the user what is missing
# --------------------------------------------------------------------------------------


def missing(paths: Iterable[Path | str]) -> list[Path]:
    """The given paths that are absent (nothing there, not even a link): what 'dgn-am download' would fetch.

    Anything else in a file's place (a dangling link, a loop, a FIFO, a folder) is not "missing": the
    reader refuses it by name, which says more than "run dgn-am download".
    """
    return [Path(p) for p in dict.fromkeys(paths) if not os.path.lexists(p)]


def _show(path: Path | str) -> str:
    """A path as the user would type it: relative to the working folder when inside it."""
    p = Path(path)
    try:
        return str(Path(os.path.abspath(p)).relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(p)


def describe_missing(paths: Iterable[Path | str], what: str = "model files") -> str:
    """One line naming the missing files and how to get them (for commands that need them)."""
    shown = ", ".join(_show(p) for p in paths)
    return f"missing {what}: {shown}; run 'dgn-am download' (needs internet) or place them there"


# --------------------------------------------------------------------------------------
# Hashing and the trust-on-first-use manifest
# --------------------------------------------------------------------------------------


class _Manifest:
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


def _expected(entry: Entry, manifest: _Manifest) -> tuple[str, str | None, bool]:
    """(algorithm, expected digest or None, whether the digest is published)."""
    if entry.sha1:
        return "sha1", entry.sha1, True
    if entry.sha256:
        return "sha256", entry.sha256, True
    return "sha256", manifest.get(entry.dest), False


def _mismatch(name: str, algo: str, expected: str, got: str, published: bool, manifest: _Manifest) -> str:
    where = "published" if published else f"recorded in {manifest.path} on first download"
    hint = (
        "the download is corrupt or the file changed upstream; it was deleted, try again"
        if published
        else f"if the upstream file legitimately changed, delete the '{name}' entry from {manifest.path}"
    )
    return f"checksum mismatch for {name}: expected {algo} {expected} ({where}) but got {got}; {hint}"


# --------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------


class _Restart(Exception):
    """The server cannot continue the partial file; start it again from zero."""


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """Start offset and total size from a ``Content-Range: bytes a-b/total`` header."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value[6:].partition("/")
    start = span.partition("-")[0]
    return (
        int(start) if start.strip().isdigit() else None,
        int(total) if total.strip().isdigit() else None,
    )


def _fetch_once(
    url: str, part: Path, name: str, progress: Progress | None, timeout: float, received: list[int]
) -> None:
    """One HTTP request into ``part``, appending when the server honours our Range.

    ``received[0]`` counts the body bytes written, so a caller can tell a transfer that broke
    off mid-way (worth resuming) from one that never started.
    """
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:  # our .part is not a prefix the server knows
            raise _Restart from exc
        raise
    with response:
        total: int | None
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                raise _Restart
            mode = "ab"
        else:  # 200: the server ignored the Range header, so this is the whole file
            offset, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        if progress:
            progress("start", name, offset, total)
        done = offset
        with open(part, mode) as f:
            while chunk := response.read(CHUNK):
                f.write(chunk)
                done += len(chunk)
                received[0] += len(chunk)
                if progress:
                    progress("progress", name, done, total)
    if total is not None and done != total:
        raise HTTPException(f"connection closed after {done} of {total} bytes")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _fetch(
    entry: Entry, nets_dir: Path, part: Path, urls: Sequence[str], progress: Progress | None, timeout: float
) -> None:
    """Fill ``part`` with the whole file from the first URL that works, resuming when possible."""
    failures: list[str] = []
    for url in urls:
        attempts = 0
        while True:
            received = [0]
            try:
                _fetch_once(url, part, entry.dest, progress, timeout, received)
                return
            except _Restart:
                part.unlink(missing_ok=True)
                attempts += 1
                if attempts > RETRIES_PER_URL:
                    failures.append(f"{url} (server cannot resume the partial download)")
                    break
                continue
            except (urllib.error.URLError, HTTPException, OSError, ValueError) as exc:
                after = part.stat().st_size if part.exists() else 0
                attempts += 1
                if received[0] > 0 and attempts <= RETRIES_PER_URL:
                    if progress:
                        progress("retry", entry.dest, after, None)
                    continue  # it broke off mid-way; resume from where it stopped
                failures.append(f"{url} ({_reason(exc)})")
                if progress:
                    progress("retry", entry.dest, after, None)
                break
    raise DownloadError(
        f"cannot download {entry.dest} from {'; nor from '.join(failures)}; "
        f"check your internet connection or place {_place_hint(entry, nets_dir)} by hand"
    )


def _place_hint(entry: Entry, nets_dir: Path) -> str:
    path = nets_dir / entry.dest
    if not entry.members:
        return f"the file at {_show(path)}"
    products = ", ".join(_show(nets_dir / m.dest) for m in entry.members)
    return f"the archive at {_show(path)} (it provides {products})"


# --------------------------------------------------------------------------------------
# Plain files
# --------------------------------------------------------------------------------------


def _ensure_file(
    entry: Entry,
    nets_dir: Path,
    manifest: _Manifest,
    progress: Progress | None,
    url_map: UrlMap | None,
    timeout: float,
) -> Path:
    """Make ``entry.dest`` present and verified, downloading only when needed."""
    dest = nets_dir / entry.dest
    check_destination(dest)  # a folder or symlink where the file goes is refused, never replaced
    algo, expected, published = _expected(entry, manifest)
    if dest.is_file():
        got = hash_file(dest, algo)
        if expected is None:
            manifest.record(entry.dest, got)  # placed by hand: trust it from now on
            expected = got
        if got == expected:
            if progress:
                size = dest.stat().st_size
                progress("skip", entry.dest, size, size)
            return dest
        # Present but not what we expect: fetch a fresh copy; the old one is replaced only if it verifies.

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    urls = [url_map(u) for u in entry.urls] if url_map else list(entry.urls)
    _fetch(entry, nets_dir, part, urls, progress, timeout)

    size = part.stat().st_size
    if progress:
        progress("verify", entry.dest, size, size)
    got = hash_file(part, algo)
    if expected is not None and got != expected:
        part.unlink(missing_ok=True)
        raise DownloadError(_mismatch(entry.dest, algo, expected, got, published, manifest))
    os.replace(part, dest)
    if expected is None:
        manifest.record(entry.dest, got)
    if progress:
        progress("done", entry.dest, size, size)
    return dest


# --------------------------------------------------------------------------------------
# Archives
# --------------------------------------------------------------------------------------


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
                f"refusing unsafe member '{name}' in {_show(archive)} (absolute path or '..')"
            )
    if len(found) > 1:
        raise DownloadError(
            f"{_show(archive)} holds several files ending in '{member.suffix}' ({', '.join(found)}); "
            f"extract the right one to {member.dest} by hand"
        )
    return found[0] if found else None


def _write_member(
    source: BinaryIO,
    size: int | None,
    member: Member,
    nets_dir: Path,
    manifest: _Manifest,
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
            raise DownloadError(_mismatch(member.dest, "sha256", expected, got, False, manifest))
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if expected is None:
        manifest.record(member.dest, got)
    if progress:
        progress("done", member.dest, done, done)
    return dest


def _extract(
    archive: Path, wanted: Sequence[Member], nets_dir: Path, manifest: _Manifest, progress: Progress | None
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
                        raise DownloadError(f"cannot read '{key}' in {_show(archive)}")
                    with src:
                        _write_member(src, tinfos[key].size, member, nets_dir, manifest, progress)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise DownloadError(
            f"cannot extract from {_show(archive)}: {_reason(exc)}; delete it and run the download again"
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
            f"{_show(archive)} has no member ending in {', '.join(repr(a) for a in absent)}; "
            "the archive's layout changed or it is not the expected file"
        )
    return chosen


def _member_ok(member: Member, nets_dir: Path, manifest: _Manifest, progress: Progress | None) -> bool:
    """Whether an extracted file is present and matches the manifest (recording it when new)."""
    dest = nets_dir / member.dest
    if not dest.is_file():
        return False
    got = hash_file(dest, "sha256")
    expected = manifest.get(member.dest)
    if expected is None:
        manifest.record(member.dest, got)
    elif got != expected:
        return False
    if progress:
        size = dest.stat().st_size
        progress("skip", member.dest, size, size)
    return True


def _ensure_archive(
    entry: Entry,
    nets_dir: Path,
    manifest: _Manifest,
    progress: Progress | None,
    url_map: UrlMap | None,
    timeout: float,
) -> list[Path]:
    needed = [m for m in entry.members if not _member_ok(m, nets_dir, manifest, progress)]
    if needed:
        archive = _ensure_file(entry, nets_dir, manifest, progress, url_map, timeout)
        _extract(archive, needed, nets_dir, manifest, progress)
    return [nets_dir / m.dest for m in entry.members]


# --------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------


def download_entries(
    entries: Iterable[Entry],
    nets_dir: Path | str,
    progress: Progress | None = None,
    url_map: UrlMap | None = None,
    timeout: float = 60.0,
) -> list[Path]:
    """Make every entry's outputs present and verified under ``nets_dir``; return them.

    ``url_map`` rewrites each URL before it is fetched (tests point it at a local server);
    ``timeout`` is the socket timeout in seconds for connecting and for each read.
    """
    nets = ensure_writable_dir(Path(nets_dir), "models folder (--nets_dir or $DGN_AM_NETS)")
    manifest = _Manifest(nets)
    results: list[Path] = []
    for entry in entries:
        if entry.members:
            results.extend(_ensure_archive(entry, nets, manifest, progress, url_map, timeout))
        else:
            results.append(_ensure_file(entry, nets, manifest, progress, url_map, timeout))
    return results


def download(
    groups: Iterable[str],
    nets_dir: Path | str,
    progress: Progress | None = None,
    url_map: UrlMap | None = None,
    timeout: float = 60.0,
) -> list[Path]:
    """Fetch the named catalogue groups (see ``GROUPS``) into ``nets_dir``; return the final files."""
    return download_entries(entries_for(groups), nets_dir, progress, url_map, timeout)


__all__ = [
    "GROUPS",
    "RELEASED_COMMIT",
    "RELEASED_SHA256",
    "DownloadError",
    "Entry",
    "Member",
    "describe_missing",
    "download",
    "download_entries",
    "entries_for",
    "group_files",
    "missing",
]
