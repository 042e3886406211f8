"""The downloader of the pretrained models and released data DGN-AM needs (the catalogue is ``catalogue``).

The models are large binaries published by third parties; they are not in the
repository, so users fetch them once into a ``nets`` folder. This module fetches the
catalogue's entries, checks them, and puts them in place. It never prints: progress is
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
``DownloadError``
    Raised for every failure; its message is a single line meant for the user.

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

import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from http.client import HTTPException
from pathlib import Path

from ..common.files import check_destination, ensure_writable_dir, hash_file
from ..common.paths import shown
from .archives import CHUNK, Progress, Record, expected_digest, extract, mismatch, reason
from .catalogue import (
    DownloadError,
    Entry,
    Member,
    entries_for,
)

UrlMap = Callable[[str], str]

# How many times one URL is tried again after a transfer that broke off mid-way
# (each retry resumes where the last one stopped); then the next mirror is tried.
RETRIES_PER_URL = 3
USER_AGENT = "dgn-am-download/0.1"


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
                failures.append(f"{url} ({reason(exc)})")
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
        return f"the file at {shown(path)}"
    products = ", ".join(shown(nets_dir / m.dest) for m in entry.members)
    return f"the archive at {shown(path)} (it provides {products})"


# --------------------------------------------------------------------------------------
# Plain files
# --------------------------------------------------------------------------------------


def _ensure_file(
    entry: Entry,
    nets_dir: Path,
    manifest: Record,
    progress: Progress | None,
    url_map: UrlMap | None,
    timeout: float,
) -> Path:
    """Make ``entry.dest`` present and verified, downloading only when needed."""
    dest = nets_dir / entry.dest
    check_destination(dest)  # a folder or symlink where the file goes is refused, never replaced
    algo, expected, published = expected_digest(entry, manifest)
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
        raise DownloadError(mismatch(entry.dest, algo, expected, got, published, manifest))
    os.replace(part, dest)
    if expected is None:
        manifest.record(entry.dest, got)
    if progress:
        progress("done", entry.dest, size, size)
    return dest


# --------------------------------------------------------------------------------------
# Archives
# --------------------------------------------------------------------------------------


def _member_ok(member: Member, nets_dir: Path, manifest: Record, progress: Progress | None) -> bool:
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
    manifest: Record,
    progress: Progress | None,
    url_map: UrlMap | None,
    timeout: float,
) -> list[Path]:
    needed = [m for m in entry.members if not _member_ok(m, nets_dir, manifest, progress)]
    if needed:
        archive = _ensure_file(entry, nets_dir, manifest, progress, url_map, timeout)
        extract(archive, needed, nets_dir, manifest, progress)
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
    manifest = Record(nets)
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
