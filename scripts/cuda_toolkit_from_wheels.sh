#!/usr/bin/env bash
# Assemble a CUDA toolkit folder that Caffe's CMake accepts, on a machine whose CUDA install has
# nvcc and the runtime but no cuBLAS/cuRAND: those come from the nvidia-cublas and nvidia-curand
# Python wheels. Prints the folder; use it as CUDA_HOME for scripts/install_caffe.sh --cuda.
#
#   scripts/cuda_toolkit_from_wheels.sh [OUT] [CUDA_RUNTIME]
#     OUT           default ~/.cache/dgn-am/cuda-toolkit
#     CUDA_RUNTIME  default /usr/local/cuda (must hold bin/nvcc)
set -euo pipefail
out=${1:-${DGN_AM_CACHE_DIR:-$HOME/.cache/dgn-am}/cuda-toolkit}
runtime=$(readlink -f "${2:-/usr/local/cuda}")
die() { echo "cuda_toolkit_from_wheels: $*" >&2; exit 1; }
[ -x "$runtime/bin/nvcc" ] || die "no nvcc under $runtime"
if [ -f "$out/.complete" ]; then echo "$out"; exit 0; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: -d "$work/whl" nvidia-cublas nvidia-curand >&2 \
  || die "could not download the nvidia-cublas / nvidia-curand wheels"
for w in "$work"/whl/*.whl; do python3 -m zipfile -e "$w" "$work/unpacked"; done

rm -rf "$out"
mkdir -p "$out/include" "$out/lib64"
ln -s "$runtime/bin" "$out/bin"
ln -s "$runtime/nvvm" "$out/nvvm"
cp -a "$runtime/include/." "$out/include/"
cp -a "$runtime/lib64/." "$out/lib64/"
for d in "$work"/unpacked/nvidia/*/; do
  [ -d "$d/include" ] && cp -a "$d/include/." "$out/include/"
  [ -d "$d/lib" ] && cp -a "$d/lib/." "$out/lib64/"
done
# The wheels ship only versioned libraries; the linker wants the plain names too.
for lib in "$out"/lib64/lib*.so.*; do
  plain="${lib%%.so.*}.so"
  [ -e "$plain" ] || ln -s "$(basename "$lib")" "$plain"
done
[ -f "$out/include/cublas_v2.h" ] && [ -f "$out/include/curand.h" ] || die "cuBLAS/cuRAND headers missing"
touch "$out/.complete"
echo "$out"
