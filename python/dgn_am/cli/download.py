"""``dgn-am download``: fetch and verify the pretrained models and the released data."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..common import paths


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..assets.catalogue import GROUPS

    p = sub.add_parser("download", help="fetch and verify the pretrained models and released data")
    p.add_argument("groups", nargs="*", default=None, metavar="GROUP",
                   help=f"what to fetch: {', '.join(sorted(GROUPS))} (default: all)")
    p.add_argument("--nets_dir", type=Path, default=None, help="where models go (default nets/ or $DGN_AM_NETS)")
    p.set_defaults(func=run)


def run(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..assets.fetch import download

    bars: dict[str, tqdm] = {}

    def progress(event: str, name: str, done: int, total: int | None) -> None:
        # A bar appears once bytes flow, so an offline failure prints only its one error line.
        bar = bars.get(name)
        if bar is None:
            if event not in ("start", "progress", "extract"):
                return
            bar = bars[name] = tqdm(total=total, desc=name, unit="B", unit_scale=True, file=sys.stderr, leave=False)
        bar.n = done
        bar.refresh()
        if event in ("done", "retry"):
            bars.pop(name).close()

    files = download(a.groups or ["all"], a.nets_dir or paths.nets_dir(), progress=progress)
    for bar in bars.values():
        bar.close()
    print(f"{len(files)} files present and verified under {a.nets_dir or paths.nets_dir()}")
    return 0
