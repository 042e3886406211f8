"""The one exception the CLI turns into a single clear line and a non-zero exit."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad user input (a file, a flag, a model) found before Caffe could abort on it.

    The message is one line: it names the offending thing and, where there is one, the fix.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def read_input(path: Path, what: str, binary: bool = False, hint: str = "") -> str | bytes:
    """A user-named file's contents, or an InputError saying which file (``what``) and why not."""
    try:
        return Path(path).read_bytes() if binary else Path(path).read_text()
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist{hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} {path} cannot be read ({exc.__class__.__name__})") from None
