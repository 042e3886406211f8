"""``argparse`` with errors in one line: the project's command lines share this parser.

Stock ``argparse`` answers a bad command line with the whole usage block and then the error; here the
error is one line that names the problem and where the usage is::

    prog: error: unrecognized arguments: --bogus; see 'prog --help'

Subparsers made with ``add_subparsers()`` are of the parser's own class (argparse's default
``parser_class=type(self)``), so sub-commands answer the same way, naming their own ``--help``.

``--help`` states every option's default: an option whose help does not already say it gets
``(default: ...)`` appended (switches, options without a default and suppressed ones excepted).
"""

from __future__ import annotations

import argparse
from typing import NoReturn

__all__ = ["ArgumentParser"]


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends an option's default to its help, unless the help already names it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or "default" in text.lower() or action.nargs == 0
                or default is None or default is False or default == "" or default is argparse.SUPPRESS):
            return action.help
        return f"{text} (default: %(default)s)"


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` whose ``error`` prints one line on stderr and exits 2."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.splitlines())  # argparse's messages are one line; keep it so for any
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")
