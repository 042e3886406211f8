"""The Caffe patches in scripts/caffe-patches, checked against the installed build.

* Caffe's own gtest suites of the patched layers (bin/caffe_layer_tests, built by
  scripts/install_caffe.sh), CPU tests only, with DGN_AM_CAFFE_FAST unset and set to 1.
* 0003: InnerProduct at one row with DGN_AM_CAFFE_FAST=1 (gemv) and unset (stock gemm) both agree with
  a float64 product, and the switch is read at every call.
* 0004: the OpenMP loops give the same bits on 1 and 2 threads (child processes).
* 0005: nets loaded for backward compute no weight gradients, and their input gradients keep every bit.
* 0006, 0009: InnerProduct products of one row and of a few give stock sgemm's bits, called directly and
  through the layer.
* 0007: with DGN_AM_CAFFE_DNNL=1, batched Convolution/Deconvolution go through oneDNN: close to Caffe's
  own results but not equal (so the path ran), stock bits at batch 1 and with DGN_AM_CAFFE_STOCK=1;
  Caffe's convolution gtests pass on it.
* 0008: ReLU backward and MAX pooling forward equal NumPy's float32 evaluation of the stock code, NaN included.
* 0010: with DGN_AM_CAFFE_DNNL=1, batched LRN goes through oneDNN (close, not equal; its backward follows the
  forward that ran) and a Deconvolution with 3 outputs keeps Caffe's forward bits.
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

from dgn_am.backend import caffe as _pycaffe

caffe = _pycaffe()  # CI builds Caffe: a missing pycaffe fails these tests, it never skips them

PREFIX = Path(caffe.__file__).resolve().parents[2]
LAYER_TESTS = PREFIX / "bin" / "caffe_layer_tests"

# CPU tests only: in a CUDA build the typed suites' GPU instances are /2 and /3.
CPU_ONLY = "-*GPU*:*CuDNN*:*/2.*:*/3.*"

# Tests per filter, counted for Caffe 99bd997's test sources on a CPU-only build.
# "dnnl": Caffe's Convolution, Deconvolution and LRN suites on patch 0007's and 0010's paths (their fixtures
# have two samples; LRN's two 16-channel tests, added by 0010, are the ones oneDNN takes), less the float
# TestNDAgainst2D of each (typed instance /0), which demand that the 2-D path equal the N-D im2col path bit
# for bit; the double ones stay on Caffe's code and pass. "stock" counts 0010's two LRN tests too.
SUITES = {
    "stock": ("*:" + CPU_ONLY, 232, {}),           # about 35 s on 2 cores
    "fast": ("*InnerProduct*:" + CPU_ONLY, 18, {"DGN_AM_CAFFE_FAST": "1"}),
    "dnnl": ("*Convolution*:*Deconvolution*:*LRN*" + CPU_ONLY + ":" + ":".join(
        f"{suite}LayerTest/0.TestNDAgainst2D" for suite in ("Convolution", "Deconvolution")),
        58, {"DGN_AM_CAFFE_DNNL": "1"}),
}
SWITCHES = ("DGN_AM_CAFFE_FAST", "DGN_AM_CAFFE_DNNL", "DGN_AM_CAFFE_STOCK")


def _env(**extra: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SWITCHES}
    env["GLOG_minloglevel"] = "2"
    for key, value in extra.items():
        if value is not None:
            env[key] = value
    return env


@pytest.mark.parametrize("name", sorted(SUITES))
def test_caffe_layer_gtests(name: str) -> None:
    assert LAYER_TESTS.is_file(), f"{LAYER_TESTS} is missing: rebuild with scripts/install_caffe.sh"
    pattern, expected, switches = SUITES[name]
    proc = subprocess.run([str(LAYER_TESTS), f"--gtest_filter={pattern}"], capture_output=True, text=True,
                          env=_env(**switches), timeout=600, check=False)
    tail = (proc.stdout + proc.stderr)[-3000:]
    assert proc.returncode == 0, tail
    passed = re.search(r"\[  PASSED  \] (\d+) tests?", proc.stdout)
    assert passed, tail
    assert int(passed.group(1)) == expected, tail


# --- 0003: InnerProduct gemv at one row ------------------------------------------------------

def _ip_net(tmp_path: Path, k: int, n: int, rng: np.random.Generator, transpose: bool = False, rows: int = 1):
    proto = tmp_path / "ip.prototxt"
    proto.write_text(textwrap.dedent(f"""\
        force_backward: true
        input: "x"
        input_shape {{ dim: {rows} dim: {k} }}
        layer {{ name: "ip" type: "InnerProduct" bottom: "x" top: "y"
                 inner_product_param {{ num_output: {n} transpose: {str(transpose).lower()} }} }}
        """))
    net = caffe.Net(str(proto), caffe.TEST)
    shape = net.params["ip"][0].data.shape   # n x k, or k x n with transpose
    net.params["ip"][0].data[...] = rng.standard_normal(shape).astype(np.float32) / np.sqrt(k)
    net.params["ip"][1].data[...] = rng.standard_normal(n).astype(np.float32)
    net.blobs["x"].data[...] = rng.standard_normal((rows, k)).astype(np.float32)
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
    from dgn_am import backend as cb

    proto = Path(__file__).resolve().parents[2] / "prototxt" / "mini" / "classifier.prototxt"
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


def _exact_and_sgemm() -> tuple[ctypes._CFuncPtr, ctypes._CFuncPtr]:
    exact = _libcaffe()["_ZN5caffe18exact_rows_productEbiiiPKfS1_Pf"]  # caffe::exact_rows_product
    exact.restype = ctypes.c_bool
    exact.argtypes = [ctypes.c_bool] + [ctypes.c_int] * 3 + [ctypes.c_void_p] * 3
    sgemm = ctypes.CDLL("libopenblas.so.0").cblas_sgemm
    sgemm.restype = None
    sgemm.argtypes = [ctypes.c_int] * 6 + [ctypes.c_float, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                           ctypes.c_int, ctypes.c_float, ctypes.c_void_p, ctypes.c_int]
    return exact, sgemm


# Rows per product: one (patch 0006, batch 1), and a few (patch 0009: batches up to 12).
ROW_COUNTS = [(1, shape) for shape in ROW_SHAPES] + [
    (m, shape) for m in (2, 5, 12) for shape in (ROW_SHAPES[0], ROW_SHAPES[1], ROW_SHAPES[6], ROW_SHAPES[7])]


@pytest.mark.parametrize(("m", "shape"), ROW_COUNTS)
def test_row_product_is_sgemm_bit_for_bit(m: int, shape: tuple[bool, int, int],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    transposed, n, k = shape
    monkeypatch.delenv("DGN_AM_CAFFE_STOCK", raising=False)
    exact, sgemm = _exact_and_sgemm()
    rng = np.random.default_rng(n + k + m)
    w = rng.standard_normal((n, k) if transposed else (k, n)).astype(np.float32)
    for trial in range(3):   # the order found on the first call holds for other inputs
        x = rng.standard_normal((m, k)).astype(np.float32)
        want, got = np.zeros((m, n), np.float32), np.full((m, n), np.nan, np.float32)
        # cblas: RowMajor 101, NoTrans 111, Trans 112; as Caffe's caffe_cpu_gemm calls it for m rows
        sgemm(101, 111, 112 if transposed else 111, m, n, k, 1.0, x.ctypes.data, k, w.ctypes.data,
              k if transposed else n, 0.0, want.ctypes.data, n)
        assert exact(transposed, m, n, k, x.ctypes.data, w.ctypes.data, got.ctypes.data), \
            "the exact few-row kernel declined on this machine (OpenBLAS, AVX2 and FMA are expected here)"
        assert np.array_equal(got, want), f"trial {trial}: {int((got != want).sum())} of {m * n} outputs differ"
    # A plain float64 product rounded once differs from sgemm's float32 sums: the order matters.
    assert not np.array_equal((x.astype(np.float64) @ (w.T if transposed else w)).astype(np.float32), want)
    monkeypatch.setenv("DGN_AM_CAFFE_STOCK", "1")
    assert not exact(transposed, m, n, k, x.ctypes.data, w.ctypes.data, got.ctypes.data)


def test_row_product_declines_more_rows_than_it_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DGN_AM_CAFFE_STOCK", raising=False)
    exact, _ = _exact_and_sgemm()
    m, n, k = 13, 4096, 4096   # from 13 rows on, Debian's OpenBLAS sums rows otherwise: sgemm serves them
    x, w = np.ones((m, k), np.float32), np.ones((n, k), np.float32)
    got = np.full((m, n), np.nan, np.float32)
    assert not exact(True, m, n, k, x.ctypes.data, w.ctypes.data, got.ctypes.data)
    assert np.isnan(got).all()   # declined: nothing written, the caller runs sgemm


@pytest.mark.parametrize("rows", [1, 5])
@pytest.mark.parametrize("transpose", [False, True])
def test_inner_product_few_rows_keep_stock_bits(tmp_path: Path, transpose: bool, rows: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DGN_AM_CAFFE_FAST", raising=False)
    k, n = 9216, 4096
    rng = np.random.default_rng(5)
    net = _ip_net(tmp_path, k, n, rng, transpose, rows)
    top_diff = rng.standard_normal((rows, n)).astype(np.float32)
    runs = []
    for stock in ("1", None, "1", None):
        if stock:
            monkeypatch.setenv("DGN_AM_CAFFE_STOCK", stock)
        else:
            monkeypatch.delenv("DGN_AM_CAFFE_STOCK")
        net.blobs["x"].data[...] = rng.standard_normal((rows, k)).astype(np.float32) if len(runs) % 2 == 0 \
            else net.blobs["x"].data
        net.forward()
        net.blobs["y"].diff[...] = top_diff
        net.backward()
        runs.append((net.blobs["y"].data.copy(), net.blobs["x"].diff.copy()))
    for a, b in ((0, 1), (2, 3)):   # each input through sgemm and through the kernels
        assert np.array_equal(runs[a][0], runs[b][0])
        assert np.array_equal(runs[a][1], runs[b][1])
    assert not np.array_equal(runs[0][0], runs[2][0])


# --- 0007: batched convolutions through oneDNN ------------------------------------------------

# The generator's kinds of layer (k4 s2 and k3 s1 deconvolutions, one to 3 channels), CaffeNet's
# (k11 s4 with no padding, grouped k5), and a convolution whose output size Caffe rounds down.
CONV_NET = """\
force_backward: true
input: "data"
input_shape {{ dim: {n} dim: 3 dim: 35 dim: 35 }}
layer {{ name: "c1" type: "Convolution" bottom: "data" top: "c1"
  convolution_param {{ num_output: 32 kernel_size: 11 stride: 4 }} }}
layer {{ name: "c2" type: "Convolution" bottom: "c1" top: "c2"
  convolution_param {{ num_output: 32 kernel_size: 5 pad: 2 group: 2 }} }}
layer {{ name: "c3" type: "Convolution" bottom: "c2" top: "c3"
  convolution_param {{ num_output: 48 kernel_size: 3 stride: 2 }} }}
layer {{ name: "d1" type: "Deconvolution" bottom: "c3" top: "d1"
  convolution_param {{ num_output: 32 kernel_size: 4 stride: 2 pad: 1 }} }}
layer {{ name: "d2" type: "Deconvolution" bottom: "d1" top: "d2"
  convolution_param {{ num_output: 32 kernel_size: 3 stride: 1 pad: 1 }} }}
layer {{ name: "d3" type: "Deconvolution" bottom: "d2" top: "d3"
  convolution_param {{ num_output: 3 kernel_size: 4 stride: 2 pad: 1 }} }}
"""


def _conv_net(tmp_path: Path, n: int):
    proto = tmp_path / f"conv{n}.prototxt"
    proto.write_text(CONV_NET.format(n=n))
    net = caffe.Net(str(proto), caffe.TEST)
    rng = np.random.default_rng(8)
    for blobs in net.params.values():
        for blob in blobs:
            blob.data[...] = rng.standard_normal(blob.data.shape).astype(np.float32) * 0.1
    net.blobs["data"].data[...] = rng.standard_normal(net.blobs["data"].data.shape).astype(np.float32)
    top_diff = rng.standard_normal(net.blobs["d3"].diff.shape).astype(np.float32)
    return net, top_diff


def _conv_run(net, top_diff: np.ndarray) -> list[np.ndarray]:
    net.forward()
    net.blobs["d3"].diff[...] = top_diff
    net.backward()
    return [net.blobs[b].data.copy() for b in ("c1", "c2", "c3", "d1", "d2", "d3")] + [net.blobs["data"].diff.copy()]


def test_batched_convolutions_go_through_onednn_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dgn_am import backend as cb

    assert cb.dnnl_built(), "scripts/install_caffe.sh builds with -DUSE_DNNL=ON"
    for key in SWITCHES:
        monkeypatch.delenv(key, raising=False)
    net, top_diff = _conv_net(tmp_path, 4)
    assert net.blobs["c3"].data.shape[2:] == (3, 3)   # (8 - 3) / 2 + 1, rounded down
    stock = _conv_run(net, top_diff)
    monkeypatch.setenv("DGN_AM_CAFFE_DNNL", "1")      # read at every call
    dnnl = _conv_run(net, top_diff)
    monkeypatch.setenv("DGN_AM_CAFFE_STOCK", "1")     # the switch that keeps every patch's arithmetic stock
    again = _conv_run(net, top_diff)
    for s, d, a in zip(stock, dnnl, again, strict=True):
        assert np.abs(s - d).max() <= 1e-5 * np.abs(s).max()
        assert np.array_equal(s, a)
    # Other summation order: some value differs in its last bits, so the oneDNN path did run.
    assert any(not np.array_equal(s, d) for s, d in zip(stock, dnnl, strict=True))

    # Caffe's weights are read at every call: changed weights give the new layer, not a cached one.
    monkeypatch.delenv("DGN_AM_CAFFE_STOCK")
    net.params["d2"][0].data[...] *= 2
    changed = _conv_run(net, top_diff)
    monkeypatch.delenv("DGN_AM_CAFFE_DNNL")
    changed_stock = _conv_run(net, top_diff)
    for c, s in zip(changed, changed_stock, strict=True):
        assert np.abs(c - s).max() <= 1e-5 * np.abs(s).max()
    assert not np.allclose(changed[4], stock[4])


def test_one_sample_keeps_stock_convolutions_with_the_switch_on(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for key in SWITCHES:
        monkeypatch.delenv(key, raising=False)
    net, top_diff = _conv_net(tmp_path, 1)
    stock = _conv_run(net, top_diff)
    monkeypatch.setenv("DGN_AM_CAFFE_DNNL", "1")
    for s, d in zip(stock, _conv_run(net, top_diff), strict=True):
        assert np.array_equal(s, d)


# --- 0010: LRN through oneDNN, deconv0's forward on Caffe's own, under 0007's switch ------------

LRN_NET = """\
force_backward: true
input: "x"
input_shape {{ dim: {n} dim: 32 dim: 6 dim: 6 }}
layer {{ name: "{name}" type: "{kind}" bottom: "x" top: "y" {param} }}
"""
LRN_PARAM = "lrn_param { local_size: 5 alpha: 0.01 beta: 0.75 }"
SMALL_DECONV_PARAM = "convolution_param { num_output: 3 kernel_size: 4 stride: 2 pad: 1 }"


def _one_layer(tmp_path: Path, n: int, kind: str, param: str):
    proto = tmp_path / f"{kind}{n}.prototxt"
    proto.write_text(LRN_NET.format(n=n, name=kind.lower(), kind=kind, param=param))
    net = caffe.Net(str(proto), caffe.TEST)
    rng = np.random.default_rng(10)
    for blobs in net.params.values():
        for blob in blobs:
            blob.data[...] = rng.standard_normal(blob.data.shape).astype(np.float32) * 0.1
    net.blobs["x"].data[...] = rng.standard_normal(net.blobs["x"].data.shape).astype(np.float32) * 4
    return net, rng.standard_normal(net.blobs["y"].diff.shape).astype(np.float32)


def _forward_backward(net, top_diff: np.ndarray, between=None) -> tuple[np.ndarray, np.ndarray]:
    net.forward()
    y = net.blobs["y"].data.copy()
    if between:
        between()
    net.blobs["y"].diff[...] = top_diff
    net.backward()
    return y, net.blobs["x"].diff.copy()


def test_batched_lrn_goes_through_onednn_and_its_backward_follows_its_forward(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in SWITCHES:
        monkeypatch.delenv(key, raising=False)
    net, top_diff = _one_layer(tmp_path, 4, "LRN", LRN_PARAM)
    stock = _forward_backward(net, top_diff)
    monkeypatch.setenv("DGN_AM_CAFFE_DNNL", "1")
    dnnl = _forward_backward(net, top_diff)
    for s, d in zip(stock, dnnl, strict=True):
        assert np.abs(s - d).max() <= 1e-5 * np.abs(s).max()
    assert any(not np.array_equal(s, d) for s, d in zip(stock, dnnl, strict=True))  # oneDNN ran
    # The switch turned off between forward and backward: the backward still matches the forward
    # that ran (oneDNN's needs its workspace, Caffe's the scale_ that only its own forward fills).
    late = _forward_backward(net, top_diff, between=lambda: monkeypatch.delenv("DGN_AM_CAFFE_DNNL"))
    assert all(np.array_equal(d, a) for d, a in zip(dnnl, late, strict=True))
    assert all(np.array_equal(s, a) for s, a in zip(stock, _forward_backward(net, top_diff), strict=True))
    # One sample keeps Caffe's LRN with the switch on.
    one, one_diff = _one_layer(tmp_path, 1, "LRN", LRN_PARAM)
    alone = _forward_backward(one, one_diff)
    monkeypatch.setenv("DGN_AM_CAFFE_DNNL", "1")
    assert all(np.array_equal(a, b) for a, b in zip(alone, _forward_backward(one, one_diff), strict=True))


def test_batched_small_deconvolution_keeps_caffes_forward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in SWITCHES:
        monkeypatch.delenv(key, raising=False)
    net, top_diff = _one_layer(tmp_path, 4, "Deconvolution", SMALL_DECONV_PARAM)
    (y, dx) = _forward_backward(net, top_diff)
    monkeypatch.setenv("DGN_AM_CAFFE_DNNL", "1")
    (y_on, dx_on) = _forward_backward(net, top_diff)
    assert np.array_equal(y, y_on)                       # 3 outputs: Caffe's own forward
    assert np.abs(dx - dx_on).max() <= 1e-5 * np.abs(dx).max()
    assert not np.array_equal(dx, dx_on)                 # its backward still goes through oneDNN


# --- 0008: ReLU backward and MAX pooling with stock bits ----------------------------------------

POOL_NET = """\
force_backward: true
input: "x"
input_shape { dim: 2 dim: 3 dim: 11 dim: 9 }
input: "y"
input_shape { dim: 2 dim: 3 dim: 11 dim: 9 }
layer { name: "relu" type: "ReLU" bottom: "x" top: "r" relu_param { negative_slope: 0.3 } }
layer { name: "pool" type: "Pooling" bottom: "y" top: "p" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
"""


def _max_pool(y: np.ndarray, k: int = 3, s: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Stock Caffe's MAX pooling, literally: strict >, from -FLT_MAX, first maximum wins, NaN never does."""
    n, c, h, w = y.shape
    ph, pw = -(-(h - k) // s) + 1, -(-(w - k) // s) + 1
    top = np.full((n, c, ph, pw), -np.finfo(np.float32).max, np.float32)
    mask = np.full((n, c, ph, pw), -1)
    for i, j, a, b in np.ndindex(n, c, ph, pw):
        for hh in range(a * s, min(a * s + k, h)):
            for ww in range(b * s, min(b * s + k, w)):
                if y[i, j, hh, ww] > top[i, j, a, b]:
                    top[i, j, a, b], mask[i, j, a, b] = y[i, j, hh, ww], hh * w + ww
    return top, mask


def test_relu_backward_and_max_pooling_keep_stock_bits(tmp_path: Path) -> None:
    proto = tmp_path / "pool.prototxt"
    proto.write_text(POOL_NET)
    net = caffe.Net(str(proto), caffe.TEST)
    rng = np.random.default_rng(9)
    x = rng.standard_normal(net.blobs["x"].data.shape).astype(np.float32)
    x.flat[:6] = [np.nan, 0.0, -0.0, np.inf, -np.inf, 1e-45]
    y = rng.standard_normal(x.shape).astype(np.float32)
    # A window in which nothing exceeds -FLT_MAX (all NaN, or all -FLT_MAX) leaves the mask at -1, and stock
    # Caffe's backward then writes before the plane: undefined behaviour, so such windows are not tested.
    y[0, 0, 0, :2] = np.nan                           # NaN in a window never wins
    y[0, 1, :3, :3] = -np.finfo(np.float32).max       # a window at the floor, one value just above it
    y[0, 1, 2, 1] = np.nextafter(y[0, 1, 2, 1], np.float32(0))
    y[1, 0, 2:5, 2:5] = 1.5                           # ties: the first wins
    net.blobs["x"].data[...] = x
    net.blobs["y"].data[...] = y
    net.forward()
    r_diff = rng.standard_normal(x.shape).astype(np.float32)
    p_diff = rng.standard_normal(net.blobs["p"].diff.shape).astype(np.float32)
    net.blobs["r"].diff[...] = r_diff
    net.blobs["p"].diff[...] = p_diff
    net.backward()

    slope = np.float32(0.3)
    want = r_diff * ((x > 0).astype(np.float32) + slope * (x <= 0).astype(np.float32))
    assert np.array_equal(net.blobs["x"].diff, want, equal_nan=True)
    top, mask = _max_pool(y)
    assert np.array_equal(net.blobs["p"].data, top)
    y_diff = np.zeros_like(y)
    assert (mask >= 0).all()
    for i, j, a, b in np.ndindex(mask.shape):
        y_diff[i, j].flat[mask[i, j, a, b]] += p_diff[i, j, a, b]
    assert np.array_equal(net.blobs["y"].diff, y_diff)
