#!/usr/bin/env python
"""Write prototxt/*.prototxt from dgn_am.backend.netspecs (run after changing a net definition).

    .venv/bin/python scripts/make_prototxts.py

Rewrites the real architectures' prototxts in prototxt/ and the miniature model's in prototxt/mini/,
printing each file it writes. It takes no options.
"""

from __future__ import annotations

import argparse
import sys

from dgn_am.common.cliargs import ArgumentParser


def main(argv: list[str] | None = None) -> int:
    ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)

    from dgn_am.backend.netspecs import all_definitions, render
    from dgn_am.common.files import write_atomic
    from dgn_am.common.paths import PROTOTXT
    from dgn_am.mini.netspecs import write_prototxts as write_mini_prototxts

    PROTOTXT.mkdir(exist_ok=True)
    for name, proto in all_definitions().items():
        write_atomic(PROTOTXT / name, render(proto).encode())
        print(PROTOTXT / name)
    for path in write_mini_prototxts():  # the miniature model's nets, into prototxt/mini/
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
