"""Caffe itself: importing pycaffe (the one place that does), its build record, its switches, CPU or GPU.

Every other module of ``backend`` reaches pycaffe through ``caffe()`` and ``proto()`` here, so the
environment Caffe must see before it loads (quiet logging, sleeping OpenMP threads) is set in one place.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from ..common.errors import InputError

os.environ.setdefault("GLOG_minloglevel", "2")  # Caffe's INFO/WARNING chatter; must precede the import
# Caffe's OpenMP loops (caffe-patches/0004): idle OpenMP threads must sleep, not spin against OpenBLAS's
# threads (spinning made iterations 1.5-1.7x slower on 2 cores). libgomp reads this when Caffe loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@cache
def caffe() -> Any:
    """The pycaffe module, imported once, or a one-line error saying how to get it."""
    try:
        import caffe as _caffe
    except ImportError as exc:
        raise InputError(f"pycaffe is not importable ({exc}); run scripts/setup.sh to build Caffe") from None
    return _caffe


@cache
def build_info() -> dict[str, Any]:
    """The build record that scripts/install_caffe.sh writes beside pycaffe (flags, CUDA, cuDNN)."""
    prefix = Path(caffe().__file__).resolve().parents[2]
    try:
        return json.loads((prefix / "build.json").read_text())
    except (OSError, ValueError):
        return {"cuda": False, "cudnn": False, "caffe_commit": "unknown"}


def proto() -> Any:
    """Caffe's protobuf messages (``caffe_pb2``), after ``caffe()`` has set up logging."""
    from caffe.proto import caffe_pb2  # noqa: PLC0415 - only after caffe() set up logging

    caffe()
    return caffe_pb2


#: The environment switch of scripts/caffe-patches/0003: "1" lets Caffe's CPU InnerProduct use a
#: matrix-vector product for one row, 2.4-4x faster there but rounded differently from stock Caffe.
FAST_MATH_ENV = "DGN_AM_CAFFE_FAST"


def fast_math() -> bool:
    """Whether this process runs Caffe's opt-in faster CPU arithmetic (recorded in every manifest)."""
    return os.environ.get(FAST_MATH_ENV) == "1"


#: The environment switch of scripts/caffe-patches/0007: "1" sends a CPU Convolution or Deconvolution
#: with more than one sample through oneDNN's direct kernels (1.3-3x faster there, by CPU; other rounding).
BATCHED_CONVOLUTION_ENV = "DGN_AM_CAFFE_DNNL"


def dnnl_built() -> bool:
    """Whether this Caffe was built with patch 0007's oneDNN convolutions (scripts/install_caffe.sh does)."""
    return "-DUSE_DNNL=ON" in build_info().get("cmake_flags", [])


@contextlib.contextmanager
def batched_convolution(size: int, gpu: bool = False) -> Iterator[str]:
    """Run the block's batches of ``size`` > 1 on oneDNN's convolutions; yields which ones ran.

    Batching already changes the rounding, and the faster convolutions that patch 0007 makes
    possible are why one batches on a CPU, so they come with it: "oneDNN". Their other summation
    order (about 1e-6 relative per layer) can also flip a max-pooling window whose two largest
    inputs are that close, which moves that window's gradient to another pixel: README, batches.
    A batch of one, a build without oneDNN, ``DGN_AM_CAFFE_DNNL=0`` or ``DGN_AM_CAFFE_STOCK=1``
    keep Caffe's own: "caffe" (on a GPU, "gpu": the switch is CPU code). Caffe reads the switch at
    every layer call, so setting it here is enough.
    """
    user = os.environ.get(BATCHED_CONVOLUTION_ENV)
    on = (not gpu and size > 1 and dnnl_built() and user != "0" and os.environ.get("DGN_AM_CAFFE_STOCK") != "1")
    os.environ[BATCHED_CONVOLUTION_ENV] = "1" if on else "0"
    try:
        yield "gpu" if gpu else "oneDNN" if on else "caffe"
    finally:
        if user is None:
            del os.environ[BATCHED_CONVOLUTION_ENV]
        else:
            os.environ[BATCHED_CONVOLUTION_ENV] = user


def set_mode(gpu: int | None) -> str:
    """CPU, or GPU ``gpu`` after checking, in a child process, that this build and device can run it."""
    c = caffe()
    if gpu is None:
        c.set_mode_cpu()
        return f"CPU: {_cpu_name()}"
    if not build_info().get("cuda"):
        raise InputError(
            f"--gpu {gpu}: this Caffe was built CPU-only; rebuild it with scripts/install_caffe.sh --cuda"
        )
    proc = subprocess.run(
        [sys.executable, "-m", "dgn_am.backend.probing", "--gpu-check", str(gpu)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise InputError(f"--gpu {gpu}: no usable CUDA device ({caffe_reason(proc.stderr)})")
    c.set_device(gpu)
    c.set_mode_gpu()
    return f"GPU {gpu}: {_gpu_name(gpu)}"


def _cpu_name() -> str:
    """The processor's model name, for the run manifest (results can differ across BLAS kernels)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown"


def _gpu_name(gpu: int) -> str:
    """The CUDA device's name as the driver reports it (pycaffe has no call for it)."""
    try:
        proc = subprocess.run(["nvidia-smi", f"--id={gpu}", "--query-gpu=name", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown device"
    return proc.stdout.strip() or "unknown device"


_GLOG = re.compile(r"^([FE])\d{4,8} [\d:.]+\s+\d+ [^\]]*\] (.*)$")  # glog: F1202 or F20261202


def caffe_reason(stderr: str) -> str:
    """The line that says why Caffe died: its FATAL (or failed CHECK) message, never the stack trace."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    fatal = [m for m in (_GLOG.match(ln) for ln in lines) if m]
    for m in sorted(fatal, key=lambda m: m.group(1) != "F"):  # a FATAL line first, then errors
        if m.group(2).strip():
            return m.group(2).strip()
    for ln in lines:
        if "Check failed" in ln or "Unknown" in ln or "Error" in ln:
            return ln.split("] ", 1)[-1]
    useful = [ln for ln in lines if not ln.startswith(("@", "***")) and "stack trace" not in ln]
    return useful[-1] if useful else "the process died without a message"
