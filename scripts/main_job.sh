#!/usr/bin/env bash
# The main job: DGN-AM on every class of the committed miniature model, offline, with the evaluation
# (dgn-am demo --evaluate): a labelled montage and a gallery in output/demo/ (or OUTPUT_DIR), and a table
# of what an independent classifier sees in each image. Exit 0 when it recognizes at least 80% of them.
#
#   scripts/main_job.sh [-h|--help] [OUTPUT_DIR [DEMO_OPTION...]]
#
# Arguments after OUTPUT_DIR go to dgn-am demo (e.g. --model_dir DIR; see .venv/bin/dgn-am demo --help).
# OUTPUT_DIR may not start with '-' (write ./-name). The paper's example 1 on the real models is
# scripts/example1.sh.
set -euo pipefail
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  -*) echo "main_job: unknown option '$1' (the first argument is OUTPUT_DIR; see --help)" >&2; exit 2 ;;
esac
if [ $# -ge 1 ] && [ -z "$1" ]; then echo "main_job: OUTPUT_DIR is an empty string (see --help)" >&2; exit 2; fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${1:-output/demo}
shift || true
exec .venv/bin/dgn-am demo --evaluate --output_dir "$out" "$@"
