"""The ``dgn-am`` command: parse, validate, call the library, report. Nothing else lives here.

One module per command (``add_parser`` and ``run``); ``progress`` turns the library's callbacks into
bars; ``args`` is argparse with one-line errors and every default shown.
"""

from __future__ import annotations

import argparse
import sys

from ..common.cliargs import ArgumentParser
from ..common.errors import InputError
from . import accuracy, actrange, compare, demo, download, figure, layers, neighbors, reproduce, sweep, synthesize, topk


def build_parser() -> argparse.ArgumentParser:
    from ..common.version import __version__

    parser = ArgumentParser(
        prog="dgn-am", description="Synthesize the preferred input of a neuron of a Caffe net through a deep "
        "generator network (DGN-AM: Nguyen, Dosovitskiy, Yosinski, Brox and Clune, NIPS 2016), step for step as "
        "the authors' released code ran it; reproduce their released examples, sweep units, and inspect nets. "
        "Each command's --help lists its options and their defaults.")
    parser.add_argument("--version", action="version", version=f"dgn-am {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (synthesize, sweep, reproduce, figure, compare, download, actrange, accuracy, topk,
                    neighbors, demo, layers):
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # named by the sub-command, whose --help lists what it takes
        commands = next(x for x in parser._actions if isinstance(x, argparse._SubParsersAction))
        commands.choices[args.command].error(f"unrecognized arguments: {' '.join(extras)}")
    try:
        return args.func(args)
    except InputError as exc:  # DownloadError, RunFailed and RunConflict are ones too
        print(f"dgn-am: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dgn-am: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # the last resort for a file-system failure no check foresaw: still one line
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"dgn-am: error: {exc.strerror or exc.__class__.__name__}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
