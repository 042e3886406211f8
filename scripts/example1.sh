#!/usr/bin/env bash
# The paper's example 1 (CaffeNet fc8 units 643 624 304 629 437, FACTS §6) on the real models, written
# to output/example1/ (or OUTPUT_DIR). Needs `dgn-am download` first; offline it stops with one line
# naming the missing model files. (The main job, scripts/main_job.sh, is the offline miniature demo.)
#
#   scripts/example1.sh [-h|--help] [OUTPUT_DIR]
#
# OUTPUT_DIR may not start with '-' (write ./-name). Environment: DGN_AM_NETS (default nets/).
set -euo pipefail
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }
die() { echo "example1: $*" >&2; exit 2; }
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option '$arg' (see --help)" ;;
  esac
done
if [ $# -gt 1 ]; then die "too many arguments: ${*:2} (see --help)"; fi
if [ $# -eq 1 ] && [ -z "$1" ]; then die "OUTPUT_DIR is an empty string (see --help)"; fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${1:-output/example1}
nets=${DGN_AM_NETS:-$root/nets}
for unit in 643 624 304 629 437; do
  .venv/bin/dgn-am synthesize --act_layer fc8 --opt_layer fc6 --unit "$unit" --xy 0 \
    --n_iters 200 --L2 0.99 --start_lr 8.0 --end_lr 1e-10 --seed 0 --clip 0 \
    --bound "$nets/released/act_range/3x/fc6.txt" --output_dir "$out"
done
