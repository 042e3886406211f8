"""Options the commands that stream real images through a net share (accuracy, topk, neighbors)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_net_options(p: argparse.ArgumentParser, role: str = "net") -> None:
    p.add_argument("--net_definition", type=Path, default=None, help=f"{role} prototxt (default CaffeNet)")
    p.add_argument("--net_weights", type=Path, default=None, help=f"{role} caffemodel (default CaffeNet)")


def add_stream_options(p: argparse.ArgumentParser) -> None:
    """``--mean``, ``--batch``, ``--gpu`` and ``--quiet``, as every one of these commands takes them."""
    p.add_argument("--mean", default="imagenet",
                   help="'imagenet' (subtract the ImageNet mean image) or a number subtracted from every pixel")
    p.add_argument("--batch", type=int, default=50, help="images per forward pass (default 50)")
    p.add_argument("--gpu", type=int, default=None, metavar="N", help="run on CUDA device N (CUDA builds only)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
