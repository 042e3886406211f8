# Sourced by scripts/install_caffe.sh (and its tests): which GPU architectures a CUDA build of Caffe targets.

# default_cuda_archs NVCC: every architecture NVCC compiles for from Pascal (sm_60) on, as "75 80 ...",
# oldest first. The integrated GPUs of Jetson and Thor boards (sm_62 72 87 101 110 121) exist only beside
# ARM CPUs, so a build on an x86_64 host leaves them out. An nvcc older than 11.1, which cannot list its
# architectures, gets Pascal to Hopper.
default_cuda_archs() {
  # `nvcc --list-gpu-code` prints sm_75 sm_80 ...
  local tegra=" 62 72 87 101 110 121 " codes c n out=()
  codes=$("$1" --list-gpu-code 2>/dev/null) || { echo "61 70 75 80 86 89 90"; return; }   # nvcc < 11.1
  for c in $codes; do
    n=${c#sm_}
    case "$n" in *[!0-9]*|"") continue ;; esac
    [ "$n" -ge 60 ] || continue
    if [ "$(uname -m)" = x86_64 ] && [[ "$tegra" == *" $n "* ]]; then continue; fi
    out+=("$n")
  done
  printf '%s\n' "${out[@]}" | sort -n | tr '\n' ' ' | sed 's/ $//'
}
