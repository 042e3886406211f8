"""The one reader that hashes a file: model checksums, released-file checks, download verification."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 22  # 4 MiB: a 233 MB caffemodel in about 60 reads, without holding it in memory


def hash_file(path: Path | str, algo: str = "sha256") -> str:
    """The hex digest of ``path``'s bytes under ``algo`` (any name ``hashlib.new`` knows: sha256, sha1)."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()
