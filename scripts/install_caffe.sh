#!/usr/bin/env bash
# Build BVLC Caffe at the pinned source, once, and cache it outside the checkout.
#
#   scripts/install_caffe.sh [-h|--help] [--cuda] [--python PY] [--print-prefix]
#
# The build is keyed by the source, the patches, the CMake flags and the Python it is built for,
# so a second run with the same inputs prints the cached prefix in seconds. The last line printed
# is always the install prefix, which holds python/caffe (pycaffe), lib/, bin/caffe and
# bin/caffe_layer_tests: Caffe's own gtest suites for the layers that scripts/caffe-patches changes
# (InnerProduct, Convolution, Deconvolution, Im2col, the neurons such as ReLU, Pooling, LRN), run by
# tests/test_caffe_patches.py.
#
# The patches (scripts/caffe-patches, applied in order): 0003 lets InnerProduct use gemv for a single
# row when DGN_AM_CAFFE_FAST=1 (not bit-identical; unset keeps stock arithmetic); 0004 runs the CPU
# loops (im2col/col2im, ReLU, Pooling, elementwise math) on OpenMP threads (-DUSE_OPENMP=ON) with
# stock bits; run it with OMP_WAIT_POLICY=PASSIVE, or idle OpenMP threads spin against OpenBLAS's;
# 0005 lets pycaffe turn a layer's weight gradients off (force_backward turns them all on); 0006
# computes one-row InnerProduct products in sgemm's own summation order (stock bits, self-checked
# against sgemm per shape; DGN_AM_CAFFE_STOCK=1 turns it off); 0007 sends a CPU Convolution or
# Deconvolution with more than one sample through oneDNN (-DUSE_DNNL=ON, Debian's libdnnl-dev) when
# DGN_AM_CAFFE_DNNL=1, which dgn-am sets for --batch N > 1 (other rounding); 0008 makes ReLU's backward
# and MAX pooling's forward faster with stock bits; 0009 extends 0006 to InnerProducts of up to 12 rows
# (stock bits, self-checked per shape and row count); 0010, under 0007's switch only, runs LRN through
# oneDNN and keeps a Deconvolution with fewer than 16 outputs on Caffe's own forward.
#
# Source, first that applies (every one is verified before use):
#   1. $DGN_AM_CAFFE_TARBALL: a local copy of the Debian orig tarball (sha256 checked);
#   2. the Debian source package, via apt-get source with a temporary sources list that reuses
#      the URI of this machine's own Debian mirror (the system's apt configuration is not touched);
#   3. a git clone of BVLC/caffe at the pinned commit (commit hash checked).
#
# Environment: DGN_AM_CACHE_DIR (default ~/.cache/dgn-am), DGN_AM_CAFFE_TARBALL,
# CAFFE_CUDA_ARCH_BIN (default: every GPU architecture this nvcc builds for from Pascal, sm_60, on,
# less the integrated Jetson/Tegra ones on an x86_64 host), CAFFE_CUDA_ARCH_PTX (default: the newest of them),
# CUDA_HOME (default /usr/local/cuda), DGN_AM_JOBS (default nproc).
set -euo pipefail

CAFFE_COMMIT=99bd99795dcdf0b1d3086a8d67ab1782a8a08383
DEB_VERSION=1.0.0+git20180821.99bd997-8
ORIG_TARBALL=caffe_1.0.0+git20180821.99bd997.orig.tar.gz
ORIG_SHA256=e0eb3f06794f7402c77b7dec8e8480273ee1a1bb192e9122b621a69d4147ad0c
GIT_URL=https://github.com/BVLC/caffe.git

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib/debian.sh"
source "$here/lib/cuda.sh"
patch_dir="$here/caffe-patches"
cache_root=${DGN_AM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dgn-am}

die() { echo "install_caffe: $*" >&2; exit 1; }
say() { echo "install_caffe: $*" >&2; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

use_cuda=0
print_prefix=0
python=python3
while [ $# -gt 0 ]; do
  case "$1" in
    --cuda) use_cuda=1 ;;
    --print-prefix) print_prefix=1 ;;
    --python)
      case "${2:-}" in ""|-*) die "--python needs an interpreter (see --help)" ;; esac
      python=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done

command -v "$python" >/dev/null 2>&1 || die "python interpreter '$python' not found"

# --- Debian packages the build needs ---------------------------------------------------------
deb_packages=(cmake g++ make patch libprotobuf-dev protobuf-compiler libgoogle-glog-dev libgflags-dev
  libhdf5-dev libboost-system-dev libboost-thread-dev libboost-filesystem-dev libboost-python-dev
  libopenblas-dev libdnnl-dev)


# --- what this build is: flags and the key they make -----------------------------------------
py_info=$("$python" - <<'EOF'
import sys, sysconfig, os
try:
    import numpy
    inc = numpy.get_include()
    npver = numpy.__version__.split(".")[0]
except ImportError:
    inc, npver = "", ""
libdir = sysconfig.get_config_var("LIBDIR") or ""
lib = os.path.join(libdir, sysconfig.get_config_var("LDLIBRARY") or "")
print(sys.executable)
print("%d.%d" % sys.version_info[:2])
print(sysconfig.get_paths()["include"])
print(lib if os.path.isfile(lib) else "")
print(inc)
print(npver)
EOF
) || die "could not query $python"
{ read -r py_exe; read -r py_version; read -r py_include; read -r py_library; read -r np_include; read -r np_major; } <<<"$py_info"
[ -n "$np_include" ] || die "NumPy is not installed for $py_exe (pycaffe is built against its headers)"

# Caffe's test files (without test_ and extension) that bin/caffe_layer_tests is built from.
layer_tests=inner_product_layer,convolution_layer,deconvolution_layer,im2col_layer,neuron_layer,pooling_layer,lrn_layer
cmake_flags=(-DCMAKE_BUILD_TYPE=Release -DUSE_OPENCV=OFF -DUSE_LEVELDB=OFF -DUSE_LMDB=OFF -DBLAS=Open
  -Dpython_version=3 -DBUILD_python=ON -DBUILD_python_layer=ON -DBUILD_docs=OFF -DBUILD_matlab=OFF
  -DUSE_OPENMP=ON -DUSE_DNNL=ON "-DBUILD_only_tests=$layer_tests")
cudnn=OFF
if [ "$use_cuda" = 1 ]; then
  cuda_home=${CUDA_HOME:-/usr/local/cuda}
  [ -x "$cuda_home/bin/nvcc" ] || die "--cuda: no nvcc under $cuda_home (set CUDA_HOME)"
  # Caffe 1.0's cuDNN code uses the v5-v7 API; cuDNN 8 removed calls it makes, so newer ones are left out.
  for h in "$cuda_home/include/cudnn_version.h" "$cuda_home/include/cudnn.h" /usr/include/cudnn_version.h /usr/include/cudnn.h; do
    if [ -f "$h" ]; then
      major=$(sed -n 's/^#define CUDNN_MAJOR[[:space:]]*\([0-9]*\).*/\1/p' "$h" | head -1)
      if [ -n "$major" ] && [ "$major" -le 7 ]; then cudnn=ON; else say "cuDNN $major found but Caffe 1.0 needs <= 7: building without cuDNN"; fi
      break
    fi
  done
  arch_bin=${CAFFE_CUDA_ARCH_BIN:-$(default_cuda_archs "$cuda_home/bin/nvcc")}
  [ -n "$arch_bin" ] || die "--cuda: $cuda_home/bin/nvcc lists no GPU architecture from sm_60 on; set CAFFE_CUDA_ARCH_BIN"
  arch_ptx=${CAFFE_CUDA_ARCH_PTX:-${arch_bin##* }}
  cmake_flags+=(-DCPU_ONLY=OFF -DUSE_CUDNN=$cudnn -DCUDA_ARCH_NAME=Manual
    "-DCUDA_ARCH_BIN=$arch_bin" "-DCUDA_ARCH_PTX=$arch_ptx" "-DCUDA_TOOLKIT_ROOT_DIR=$cuda_home")
else
  cmake_flags+=(-DCPU_ONLY=ON -DUSE_CUDNN=OFF)
fi

patch_sum=$(cat "$patch_dir"/*.patch | sha256sum | cut -c1-64)
key=$(printf '%s\n' "$CAFFE_COMMIT" "$patch_sum" "${cmake_flags[@]}" "python$py_version" "numpy$np_major" \
  | sha256sum | cut -c1-16)
prefix="$cache_root/caffe/$key"

if [ "$print_prefix" = 1 ]; then
  echo "$prefix"
  exit 0
fi

if [ -f "$prefix/.complete" ]; then
  say "cached build $key"
  echo "$prefix"
  exit 0
fi

mkdir -p "$cache_root/caffe" "$cache_root/sources"
exec 9>"$cache_root/caffe/$key.lock"
flock 9
if [ -f "$prefix/.complete" ]; then echo "$prefix"; exit 0; fi   # another run finished it meanwhile

ensure_debian_packages install_caffe "${deb_packages[@]}"

# --- source ------------------------------------------------------------------------------------
work=$(mktemp -d "$cache_root/caffe/$key.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
src="$work/src"
mkdir -p "$src"

sha_ok() { [ "$(sha256sum "$1" | cut -c1-64)" = "$ORIG_SHA256" ]; }


fetch_debian_source() {
  command -v apt-get >/dev/null 2>&1 || return 1
  local uri tmp
  uri=$(debian_mirror_uri)
  [ -n "$uri" ] || return 1
  tmp="$work/apt"
  mkdir -p "$tmp/lists/partial" "$tmp/dl"
  echo "deb-src $uri bullseye main" >"$tmp/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o "Dir::Etc::SourceParts=$tmp/none"
    -o "Dir::State::Lists=$tmp/lists" -o "APT::Sandbox::User=root")
  apt-get "${opts[@]}" -q update >/dev/null 2>&1 || return 1
  (cd "$tmp/dl" && apt-get "${opts[@]}" -q source --download-only "caffe=$DEB_VERSION" >/dev/null 2>&1) || return 1
  [ -f "$tmp/dl/$ORIG_TARBALL" ] || return 1
  mv "$tmp/dl/$ORIG_TARBALL" "$1"
}

tarball=""
if [ -n "${DGN_AM_CAFFE_TARBALL:-}" ]; then
  [ -f "$DGN_AM_CAFFE_TARBALL" ] || die "DGN_AM_CAFFE_TARBALL=$DGN_AM_CAFFE_TARBALL does not exist"
  sha_ok "$DGN_AM_CAFFE_TARBALL" || die "$DGN_AM_CAFFE_TARBALL: sha256 is not $ORIG_SHA256"
  tarball=$DGN_AM_CAFFE_TARBALL
elif [ -f "$cache_root/sources/$ORIG_TARBALL" ] && sha_ok "$cache_root/sources/$ORIG_TARBALL"; then
  tarball="$cache_root/sources/$ORIG_TARBALL"
else
  say "fetching the Debian source package caffe $DEB_VERSION"
  if fetch_debian_source "$work/$ORIG_TARBALL"; then
    sha_ok "$work/$ORIG_TARBALL" || die "Debian source tarball: sha256 is not $ORIG_SHA256"
    mv "$work/$ORIG_TARBALL" "$cache_root/sources/$ORIG_TARBALL.part"
    mv "$cache_root/sources/$ORIG_TARBALL.part" "$cache_root/sources/$ORIG_TARBALL"
    tarball="$cache_root/sources/$ORIG_TARBALL"
  fi
fi

if [ -n "$tarball" ]; then
  say "source: $tarball (sha256 verified)"
  tar xzf "$tarball" -C "$src"      # the orig tarball has no top-level folder
else
  say "Debian source package unavailable; cloning $GIT_URL at $CAFFE_COMMIT"
  git clone -q "$GIT_URL" "$src" || die "no Caffe source: set DGN_AM_CAFFE_TARBALL, or allow apt-get source or git"
  git -C "$src" checkout -q "$CAFFE_COMMIT" || die "commit $CAFFE_COMMIT not found in $GIT_URL"
  [ "$(git -C "$src" rev-parse HEAD)" = "$CAFFE_COMMIT" ] || die "checked-out commit is not $CAFFE_COMMIT"
fi

for p in "$patch_dir"/*.patch; do
  patch -d "$src" -p1 -s -N <"$p" || die "patch $(basename "$p") did not apply"
done

# --- build -------------------------------------------------------------------------------------
say "building Caffe ($key) with: ${cmake_flags[*]}"
log="$cache_root/caffe/$key.log"
build="$src/build"
mkdir -p "$build"
rpath="$prefix/lib"
# A CUDA build finds cudart, cuBLAS and cuRAND where it was built against them, with no LD_LIBRARY_PATH.
if [ "$use_cuda" = 1 ]; then rpath="$rpath;$cuda_home/lib64"; fi
py_flags=("-DPYTHON_EXECUTABLE=$py_exe" "-DPYTHON_INCLUDE_DIR=$py_include" "-DNUMPY_INCLUDE_DIR=$np_include")
[ -n "$py_library" ] && py_flags+=("-DPYTHON_LIBRARY=$py_library")
start=$(date +%s)
(
  cd "$build"
  # Binaries get their final RPATH at link time, so they can be copied into the prefix unchanged.
  cmake .. "${cmake_flags[@]}" "${py_flags[@]}" -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON -DCMAKE_INSTALL_RPATH="$rpath"
  # Only what the project uses: libcaffe, pycaffe, the caffe tool (for `caffe time`) and the
  # gtest binary of the patched layers (test.testbin, limited by BUILD_only_tests).
  make -j"${DGN_AM_JOBS:-$(nproc)}" caffe pycaffe caffe.bin test.testbin
) >"$log" 2>&1 || { tail -n 30 "$log" >&2; die "build failed; full log: $log"; }
seconds=$(( $(date +%s) - start ))

rm -rf "$prefix"
mkdir -p "$prefix/lib" "$prefix/bin" "$prefix/python"
cp -a "$build"/lib/libcaffe.so* "$prefix/lib/"
cp -a "$build/tools/caffe" "$prefix/bin/caffe"
cp -a "$build/test/test.testbin" "$prefix/bin/caffe_layer_tests"
cp -rL "$src/python/caffe" "$prefix/python/caffe"        # -L: _caffe.so is a symlink into build/
rm -rf "$prefix/python/caffe/test"
printf '%s\n' "${cmake_flags[@]}" >"$prefix/cmake_flags.txt"
CAFFE_COMMIT=$CAFFE_COMMIT KEY=$key CUDA=$use_cuda CUDNN=$cudnn PYV=$py_version NPV=$np_major SECS=$seconds \
PATCHES="$(cd "$patch_dir" && echo *.patch)" "$python" - "$prefix" <<'EOF'
import json, os, sys
e = os.environ
flags = open(os.path.join(sys.argv[1], "cmake_flags.txt")).read().split("\n")
info = {"caffe_commit": e["CAFFE_COMMIT"], "key": e["KEY"], "cuda": e["CUDA"] == "1",
        "cudnn": e["CUDNN"] == "ON", "cmake_flags": [f for f in flags if f],
        "patches": e["PATCHES"].split(), "python": e["PYV"], "numpy_major": e["NPV"],
        "build_seconds": int(e["SECS"])}
with open(os.path.join(sys.argv[1], "build.json"), "w") as f:
    json.dump(info, f, indent=1)
EOF
cp "$log" "$prefix/build.log"
touch "$prefix/.complete"
say "built in ${seconds}s"
echo "$prefix"
