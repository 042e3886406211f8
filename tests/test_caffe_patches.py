"""The Caffe patches in scripts/caffe-patches, checked against the installed build.

* Caffe's own gtest suites of the patched layers (bin/caffe_layer_tests, built by
  scripts/install_caffe.sh), CPU tests only, with DGN_AM_CAFFE_FAST unset and set to 1.
* 0003: InnerProduct at one row with DGN_AM_CAFFE_FAST=1 (gemv) and unset (stock gemm) both agree with
  a float64 product, and the switch is read at every call.
* 0004: the OpenMP loops give the same bits on 1 and 2 threads (child processes).
* 0005: nets loaded for backward compute no weight gradients, and their input gradients keep every bit.
* 0006: one-row InnerProduct products give stock sgemm's bits, called directly and through the layer.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dgn_am.caffe_backend import caffe as _pycaffe

caffe = _pycaffe()  # CI builds Caffe: a missing pycaffe fails these tests, it never skips them

PREFIX = Path(caffe.__file__).resolve().parents[2]
LAYER_TESTS = PREFIX / "bin" / "caffe_layer_tests"

# CPU tests only: in a CUDA build the typed suites' GPU instances are /2 and /3.
CPU_ONLY = "-*GPU*:*CuDNN*:*/2.*:*/3.*"

# Tests per filter, counted for Caffe 99bd997's test sources on a CPU-only build.
SUITES = {
    "stock": ("*:" + CPU_ONLY, 228),           # about 35 s on 2 cores
    "fast": ("*InnerProduct*:" + CPU_ONLY, 18),
}


def _env(**extra: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DGN_AM_CAFFE_FAST"}
    env["GLOG_minloglevel"] = "2"
    for key, value in extra.items():
        if value is not None:
            env[key] = value
    return env


@pytest.mark.parametrize(("name", "fast"), [("stock", None), ("fast", "1")])
def test_caffe_layer_gtests(name: str, fast: str | None) -> None:
    assert LAYER_TESTS.is_file(), f"{LAYER_TESTS} is missing: rebuild with scripts/install_caffe.sh"
    pattern, expected = SUITES[name]
    proc = subprocess.run([str(LAYER_TESTS), f"--gtest_filter={pattern}"], capture_output=True, text=True,
                          env=_env(DGN_AM_CAFFE_FAST=fast), timeout=600, check=False)
    tail = (proc.stdout + proc.stderr)[-3000:]
    assert proc.returncode == 0, tail
    passed = re.search(r"\[  PASSED  \] (\d+) tests?", proc.stdout)
    assert passed, tail
    assert int(passed.group(1)) == expected, tail


# --- 0003: InnerProduct gemv at one row ------------------------------------------------------

def _ip_net(tmp_path: Path, k: int, n: int, rng: np.random.Generator, transpose: bool = False):
    proto = tmp_path / "ip.prototxt"
    proto.write_text(textwrap.dedent(f"""\
        force_backward: true
        input: "x"
        input_shape {{ dim: 1 dim: {k} }}
        layer {{ name: "ip" type: "InnerProduct" bottom: "x" top: "y"
                 inner_product_param {{ num_output: {n} transpose: {str(transpose).lower()} }} }}
        """))
    net = caffe.Net(str(proto), caffe.TEST)
    shape = net.params["ip"][0].data.shape   # n x k, or k x n with transpose
    net.params["ip"][0].data[...] = rng.standard_normal(shape).astype(np.float32) / np.sqrt(k)
    net.params["ip"][1].data[...] = rng.standard_normal(n).astype(np.float32)
    net.blobs["x"].data[...] = rng.standard_normal((1, k)).astype(np.float32)
    return net


def _ip_run(net, top_diff: np.ndarray) -> tuple[np.ndarray, ...]:
    net.forward()
    y = net.blobs["y"].data.copy()
    net.blobs["y"].diff[...] = top_diff
    net.params["ip"][0].diff[...] = 0   # Caffe accumulates weight gradients
    net.backward()
    return y, net.blobs["x"].diff.copy(), net.params["ip"][0].diff.copy()


def test_inner_product_one_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    k = n = 4096
    net = _ip_net(tmp_path, k, n, rng)
    w = net.params["ip"][0].data.astype(np.float64)
    b = net.params["ip"][1].data.astype(np.float64)
    x = net.blobs["x"].data.astype(np.float64)
    top_diff = rng.standard_normal((1, n)).astype(np.float32)
    want = ((x @ w.T + b), top_diff.astype(np.float64) @ w, np.outer(top_diff, x))

    monkeypatch.delenv("DGN_AM_CAFFE_FAST", raising=False)
    stock = _ip_run(net, top_diff)
    monkeypatch.setenv("DGN_AM_CAFFE_FAST", "1")      # read at each call: no new net needed
    fast = _ip_run(net, top_diff)
    monkeypatch.setenv("DGN_AM_CAFFE_FAST", "yes")    # only "1" switches it on
    other = _ip_run(net, top_diff)

    for got in (stock, fast):
        for g, ref in zip(got, want, strict=True):
            scale = np.abs(ref).max()
            assert np.abs(g - ref).max() <= 1e-5 * scale
    for s, f in zip(stock, fast, strict=True):
        assert np.abs(s - f).max() <= 1e-5 * np.abs(s).max()
    for s, o in zip(stock, other, strict=True):
        assert np.array_equal(s, o)
    # gemv and gemm add up the 4096 products in different orders: some output differs in its last
    # bits, which shows that the switch took effect at run time (checked on Debian OpenBLAS 0.3.21).
    assert not np.array_equal(stock[0], fast[0])


# --- 0004: the OpenMP loops, in child processes ---------------------------------------------

NET = """\
force_backward: true
input: "data"
input_shape {{ dim: {n} dim: 16 dim: 64 dim: 64 }}
layer {{ name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param {{ num_output: 32 kernel_size: 3 stride: 1 pad: 1 group: 2 }} }}
layer {{ name: "relu" type: "ReLU" bottom: "conv" top: "conv" relu_param {{ negative_slope: 0.3 }} }}
layer {{ name: "lrn" type: "LRN" bottom: "conv" top: "lrn" lrn_param {{ local_size: 5 alpha: 0.0001 beta: 0.75 }} }}
layer {{ name: "pool" type: "Pooling" bottom: "lrn" top: "pool"
  pooling_param {{ pool: MAX kernel_size: 3 stride: 2 }} }}
layer {{ name: "ave" type: "Pooling" bottom: "pool" top: "ave"
  pooling_param {{ pool: AVE kernel_size: 3 stride: 1 pad: 1 }} }}
layer {{ name: "one" type: "Convolution" bottom: "ave" top: "one"
  convolution_param {{ num_output: 24 kernel_size: 1 }} }}
layer {{ name: "deconv" type: "Deconvolution" bottom: "one" top: "deconv"
  convolution_param {{ num_output: 16 kernel_size: 4 stride: 2 pad: 1 }} }}
layer {{ name: "relu2" type: "ReLU" bottom: "deconv" top: "deconv" }}
"""

CHILD = """\
import os, sys
import numpy as np
os.environ["GLOG_minloglevel"] = "2"
import caffe
caffe.set_mode_cpu()
net = caffe.Net(sys.argv[1], caffe.TEST)
rng = np.random.default_rng(1)
for name in net.params:
    for blob in net.params[name]:
        blob.data[...] = rng.standard_normal(blob.data.shape).astype(np.float32) * 0.2
net.blobs["data"].data[...] = rng.standard_normal(net.blobs["data"].data.shape).astype(np.float32)
out = {}
net.forward()
top = net.blobs["deconv"]
top.diff[...] = rng.standard_normal(top.diff.shape).astype(np.float32)
net.backward()
for name, blob in net.blobs.items():
    out["data_" + name] = blob.data
    out["diff_" + name] = blob.diff
np.savez(sys.argv[2], **out)
"""


def _run_child(tmp_path: Path, batch: int, tag: str, **env: str | None) -> dict[str, np.ndarray]:
    proto = tmp_path / f"net{batch}.prototxt"
    proto.write_text(NET.format(n=batch))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out = tmp_path / f"{tag}.npz"
    proc = subprocess.run([sys.executable, str(script), str(proto), str(out)], capture_output=True, text=True,
                          env=_env(**env), timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with np.load(out) as f:
        return dict(f)


def _build_info() -> dict:
    try:
        return json.loads((PREFIX / "build.json").read_text())
    except (OSError, ValueError):
        return {}


@pytest.mark.parametrize("batch", [1, 2])
def test_parallel_loops_same_bits(tmp_path: Path, batch: int) -> None:
    assert "-DUSE_OPENMP=ON" in _build_info().get("cmake_flags", []), "scripts/install_caffe.sh builds with OpenMP"
    # OpenBLAS on one thread in both (OMP_NUM_THREADS would set its count too): only the loops vary.
    common = {"OPENBLAS_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    one = _run_child(tmp_path, batch, "omp1", OMP_NUM_THREADS="1", **common)
    two = _run_child(tmp_path, batch, "omp2", OMP_NUM_THREADS="2", **common)
    assert one.keys() == two.keys()
    for key, value in one.items():
        assert np.array_equal(value, two[key]), key


# --- 0005: weight gradients off on the nets dgn-am drives backward ---------------------------

def test_nets_loaded_for_backward_skip_weight_gradients(tmp_path: Path) -> None:
    from dgn_am import caffe_backend as cb

    proto = Path(__file__).resolve().parents[1] / "prototxt" / "mini" / "classifier.prototxt"
    weights = cb.save_random_weights(proto, tmp_path / "c.caffemodel", 3)
    loaded, _ = cb.load_net(proto, weights, backward=True)
    plain = caffe.Net(str(proto), caffe.TEST, weights=str(weights))  # Caffe's default: every gradient
    learnable = [layer for layer in loaded.layers if len(layer.blobs)]
    assert learnable
    assert not any(layer.param_propagate_down(k) for layer in learnable for k in range(len(layer.blobs)))
    assert all(layer.param_propagate_down(0) for layer in plain.layers if len(layer.blobs))

    rng = np.random.default_rng(4)
    image = rng.standard_normal(plain.blobs["data"].data.shape).astype(np.float32)
    grads = []
    for net in (loaded, plain):
        for blobs in net.params.values():
            blobs[0].diff[...] = 0
        net.blobs["data"].data[...] = image
        net.forward()
        top = net.blobs[net.outputs[0]]
        top.diff[...] = rng.standard_normal(top.diff.shape).astype(np.float32) if not grads else grads[0][1]
        net.backward()
        weight_diff = sum(float(np.abs(b[0].diff).sum()) for b in net.params.values())
        grads.append((net.blobs["data"].diff.copy(), top.diff.copy(), weight_diff))
    assert np.array_equal(grads[0][0], grads[1][0])   # the input gradient, bit for bit
    assert np.abs(grads[0][0]).max() > 0
    assert grads[0][2] == 0.0 and grads[1][2] > 0     # weights: none computed vs computed


# --- 0006: one-row products in sgemm's order -------------------------------------------------

def _libcaffe() -> ctypes.CDLL:
    lib = next((PREFIX / "lib").glob("libcaffe.so*"))
    return ctypes.CDLL(str(lib))


# (transposed W, n outputs, k terms): the fc layers of CaffeNet and the generators, then odd sizes
# whose sums split into uneven blocks.
ROW_SHAPES = [(True, 4096, 9216), (False, 9216, 4096), (True, 4096, 4096), (False, 4096, 4096),
              (True, 1000, 4096), (False, 4096, 1000), (True, 1501, 2003), (False, 2003, 1501)]


@pytest.mark.parametrize(("transposed", "n", "k"), ROW_SHAPES)
def test_row_product_is_sgemm_bit_for_bit(transposed: bool, n: int, k: int,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DGN_AM_CAFFE_STOCK", raising=False)
    lib = _libcaffe()
    exact = lib["_ZN5caffe17exact_row_productEbiiPKfS1_Pf"]
    exact.restype = ctypes.c_bool
    exact.argtypes = [ctypes.c_bool, ctypes.c_int, ctypes.c_int] + [ctypes.c_void_p] * 3
    sgemm = ctypes.CDLL("libopenblas.so.0").cblas_sgemm
    sgemm.restype = None
    sgemm.argtypes = [ctypes.c_int] * 6 + [ctypes.c_float, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                           ctypes.c_int, ctypes.c_float, ctypes.c_void_p, ctypes.c_int]
    rng = np.random.default_rng(n + k)
    w = rng.standard_normal((n, k) if transposed else (k, n)).astype(np.float32)
    for trial in range(3):   # the order found on the first call holds for other inputs
        x = rng.standard_normal(k).astype(np.float32)
        want, got = np.zeros(n, np.float32), np.full(n, np.nan, np.float32)
        # cblas: RowMajor 101, NoTrans 111, Trans 112; as Caffe's caffe_cpu_gemm calls it for one row
        sgemm(101, 111, 112 if transposed else 111, 1, n, k, 1.0, x.ctypes.data, k, w.ctypes.data,
              k if transposed else n, 0.0, want.ctypes.data, n)
        assert exact(transposed, n, k, x.ctypes.data, w.ctypes.data, got.ctypes.data), \
            "the exact one-row kernel declined on this machine (OpenBLAS, AVX2 and FMA are expected here)"
        assert np.array_equal(got, want), f"trial {trial}: {int((got != want).sum())} of {n} outputs differ"
    # A plain float64 product rounded once differs from sgemm's float32 sums: the order matters.
    assert not np.array_equal((w.astype(np.float64) @ x if transposed else x @ w).astype(np.float32), want)
    monkeypatch.setenv("DGN_AM_CAFFE_STOCK", "1")
    assert not exact(transposed, n, k, x.ctypes.data, w.ctypes.data, got.ctypes.data)


@pytest.mark.parametrize("transpose", [False, True])
def test_inner_product_one_row_keeps_stock_bits(tmp_path: Path, transpose: bool,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DGN_AM_CAFFE_FAST", raising=False)
    k, n = 9216, 4096
    rng = np.random.default_rng(5)
    net = _ip_net(tmp_path, k, n, rng, transpose)
    top_diff = rng.standard_normal((1, n)).astype(np.float32)
    runs = []
    for stock in ("1", None, "1", None):
        if stock:
            monkeypatch.setenv("DGN_AM_CAFFE_STOCK", stock)
        else:
            monkeypatch.delenv("DGN_AM_CAFFE_STOCK")
        net.blobs["x"].data[...] = rng.standard_normal((1, k)).astype(np.float32) if len(runs) % 2 == 0 \
            else net.blobs["x"].data
        net.forward()
        net.blobs["y"].diff[...] = top_diff
        net.backward()
        runs.append((net.blobs["y"].data.copy(), net.blobs["x"].diff.copy()))
    for a, b in ((0, 1), (2, 3)):   # each input through sgemm and through the kernels
        assert np.array_equal(runs[a][0], runs[b][0])
        assert np.array_equal(runs[a][1], runs[b][1])
    assert not np.array_equal(runs[0][0], runs[2][0])
