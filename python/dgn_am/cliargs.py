"""``argparse`` with errors in one line: the project's command lines share this parser.

Stock ``argparse`` answers a bad command line with the whole usage block and then the error; here the
error is one line that names the problem and where the usage is::

    prog: error: unrecognized arguments: --bogus; see 'prog --help'

Subparsers made with ``add_subparsers()`` are of the parser's own class (argparse's default
``parser_class=type(self)``), so sub-commands answer the same way, naming their own ``--help``.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

__all__ = ["ArgumentParser"]


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` whose ``error`` prints one line on stderr and exits 2."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.splitlines())  # argparse's messages are one line; keep it so for any
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")
