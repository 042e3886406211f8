#!/usr/bin/env bash
# Assemble a CUDA toolkit folder that Caffe's CMake accepts from NVIDIA's PyPI wheels. Prints the
# folder; use it as CUDA_HOME for scripts/install_caffe.sh --cuda.
#
#   scripts/cuda_toolkit_from_wheels.sh [-h|--help] [OUT] [CUDA_RUNTIME]
#     OUT           default $DGN_AM_CACHE_DIR/cuda-toolkit (DGN_AM_CACHE_DIR: ~/.cache/dgn-am)
#     CUDA_RUNTIME  a CUDA install holding bin/nvcc and the runtime but no cuBLAS/cuRAND: only those two
#                   come from wheels. Without it everything does: nvcc, cicc, the runtime, CCCL's headers,
#                   cuBLAS and cuRAND, all of CUDA 13.0 (the only CUDA whose compiler is on PyPI: the
#                   -cu12 and -cu11 nvcc wheels hold ptxas alone).
#
# Environment: PYTHON (the interpreter whose pip downloads the wheels, default python3).
# OUT must be missing, empty, or a folder this script made (it holds .dgn-am-cuda-toolkit): a
# finished one is printed as it is, an unfinished one is rebuilt. Any other folder is refused and
# left untouched. Folder names may not start with '-' (write ./-name).
set -euo pipefail

MARKER=.dgn-am-cuda-toolkit
# CUDA 13.0, pinned: its code runs on every driver from 580 on (a later 13.x would need a later driver
# to JIT its PTX), and the same wheels give the same toolkit on every machine.
COMPILER_WHEELS=(nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85)
LIBRARY_WHEELS=(nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35)
die() { echo "cuda_toolkit_from_wheels: $*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

args=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option '$arg' (see --help)" ;;
    *) args+=("$arg") ;;
  esac
done
if [ ${#args[@]} -gt 2 ]; then die "too many arguments: ${args[*]:2} (see --help)"; fi
if [ ${#args[@]} -ge 1 ] && [ -z "${args[0]}" ]; then die "OUT is an empty string (see --help)"; fi
out=${args[0]:-${DGN_AM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dgn-am}/cuda-toolkit}
runtime_arg=${args[1]:-}
python=${PYTHON:-python3}

# Refuse before anything is downloaded or touched.
if [ -e "$out" ] || [ -L "$out" ]; then
  [ -d "$out" ] || die "$out exists and is not a folder; give another OUT"
  if [ ! -f "$out/$MARKER" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
    die "$out is not empty and was not made by this script (no $MARKER); give another OUT"
  fi
fi
if [ ${#args[@]} -ge 2 ] && [ -z "$runtime_arg" ]; then die "CUDA_RUNTIME is an empty string (see --help)"; fi
wheels=("${LIBRARY_WHEELS[@]}")
if [ -n "$runtime_arg" ]; then
  runtime=$(readlink -f -- "$runtime_arg" 2>/dev/null) || runtime=$runtime_arg
  [ -x "$runtime/bin/nvcc" ] || die "no nvcc under $runtime_arg"
else
  wheels=("${COMPILER_WHEELS[@]}" "${wheels[@]}")
fi
if [ -f "$out/$MARKER" ] && [ -f "$out/.complete" ]; then echo "$out"; exit 0; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m pip download -q --no-cache-dir --no-deps --only-binary=:all: -d "$work/whl" "${wheels[@]}" >&2 \
  || die "could not download the wheels ${wheels[*]}"
for w in "$work"/whl/*.whl; do "$python" -m zipfile -e "$w" "$work/unpacked"; done

# Only a folder this script made (or an empty one) gets here: clear it and mark it as ours first,
# so that an interrupted build can be replaced by the next run. The folder itself is kept.
if [ -f "$out/$MARKER" ]; then
  find "$out/" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +
elif [ -d "$out" ] && [ -n "$(ls -A "$out")" ]; then
  die "$out is not empty and was not made by this script (no $MARKER); give another OUT"
fi
mkdir -p "$out"
echo "made by scripts/cuda_toolkit_from_wheels.sh (dgn-am); it may delete and rebuild this folder" >"$out/$MARKER"
mkdir -p "$out/include" "$out/lib64"
if [ -n "$runtime_arg" ]; then
  ln -s "$runtime/bin" "$out/bin"
  ln -s "$runtime/nvvm" "$out/nvvm"
  cp -a "$runtime/include/." "$out/include/"
  cp -a "$runtime/lib64/." "$out/lib64/"
fi
# The wheels unpack as nvidia/cu13/{bin,include,lib,nvvm}: a toolkit's own layout, lib/ named lib64/.
for d in "$work"/unpacked/nvidia/*/; do
  if [ -d "$d/include" ]; then cp -a "$d/include/." "$out/include/"; fi
  if [ -d "$d/lib" ]; then cp -a "$d/lib/." "$out/lib64/"; fi
  for sub in bin nvvm; do
    if [ -d "$d/$sub" ]; then mkdir -p "$out/$sub" && cp -a "$d/$sub/." "$out/$sub/"; fi
  done
done
if [ -z "$runtime_arg" ]; then
  # Unzipping drops the executable bits; nvcc's own profile finds lib/ next to bin/.
  find "$out/bin" "$out/nvvm/bin" -type f -exec chmod 755 {} +
  ln -s lib64 "$out/lib"
  [ -x "$out/bin/nvcc" ] && [ -x "$out/nvvm/bin/cicc" ] || die "the wheels held no nvcc or cicc"
fi
# The wheels ship only versioned libraries; the linker wants the plain names too.
for lib in "$out"/lib64/lib*.so.*; do
  [ -e "$lib" ] || continue
  plain="${lib%%.so.*}.so"
  [ -e "$plain" ] || ln -s "$(basename "$lib")" "$plain"
done
[ -f "$out/include/cublas_v2.h" ] && [ -f "$out/include/curand.h" ] || die "cuBLAS/cuRAND headers missing"
touch "$out/.complete"
echo "$out"
