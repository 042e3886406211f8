"""Shared fixtures: caffemodels of the real architectures with random weights, made once per session."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from dgn_am.backend import save_random_weights

os.environ.setdefault("GLOG_minloglevel", "2")

ROOT = Path(__file__).resolve().parents[1]
PROTOTXT = ROOT / "prototxt"


@dataclass
class Models:
    caffenet: Path
    generator: Path
    dir: Path


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> Models:
    d = tmp_path_factory.mktemp("models")
    return Models(
        caffenet=save_random_weights(PROTOTXT / "caffenet.prototxt", d / "caffenet.caffemodel", 1),
        generator=save_random_weights(PROTOTXT / "generator_fc6.prototxt", d / "generator_fc6.caffemodel", 2),
        dir=d,
    )


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``dgn-am`` in a child process, so that a Caffe abort would show as a crash, not kill pytest."""
    env = dict(os.environ, GLOG_minloglevel="2")
    return subprocess.run([sys.executable, "-m", "dgn_am.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, check=False)


def synth_args(models: Models, out: Path, *extra: str, n_iters: int = 2) -> list[str]:
    return ["synthesize", "--net_weights", str(models.caffenet), "--generator_weights", str(models.generator),
            "--n_iters", str(n_iters), "--output_dir", str(out), *extra]


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
