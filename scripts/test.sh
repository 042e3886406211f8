#!/usr/bin/env bash
# The whole test suite, from a fresh checkout: set up (Caffe build cached), lint, then pytest.
#
#   scripts/test.sh [-h|--help] [TEST_PATH...] [-- PYTEST_ARG...]
#
# pytest runs the TEST_PATHs given (tests/test_cli.py, tests/test_cli.py::test_x), else all of tests/,
# with everything after '--' (pytest's own options, e.g. -- -x -k demo); scripts/test.sh itself knows
# only --help.
set -euo pipefail
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }
paths=()
pytest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --) shift; pytest_args+=("$@"); break ;;
    -*) echo "test: unknown option '$1' (pytest's options go after '--'; see --help)" >&2; exit 2 ;;
    *) paths+=("$1") ;;
  esac
  shift
done
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/setup.sh --no-run
.venv/bin/ruff check python tests scripts
[ ${#paths[@]} -gt 0 ] || paths=(tests)
exec .venv/bin/python -m pytest -q "${paths[@]}" "${pytest_args[@]}"
