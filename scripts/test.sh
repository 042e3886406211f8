#!/usr/bin/env bash
# The whole test suite, from a fresh checkout: set up (Caffe build cached), lint, then pytest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/setup.sh --no-run
.venv/bin/ruff check python tests scripts
exec .venv/bin/python -m pytest -q tests "$@"
