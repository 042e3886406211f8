#!/usr/bin/env bash
# The main job: DGN-AM on every class of the committed miniature model, offline, with the evaluation
# (dgn-am demo --evaluate): a labelled montage and a gallery in output/demo/ (or $1), and a table of what
# an independent classifier sees in each image. Exit 0 when it recognizes at least 80% of them.
# Further arguments go to dgn-am demo (e.g. --model_dir DIR). The paper's example 1 on the real models is
# scripts/example1.sh.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${1:-output/demo}
shift || true
exec .venv/bin/dgn-am demo --evaluate --output_dir "$out" "$@"
