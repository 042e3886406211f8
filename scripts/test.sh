#!/usr/bin/env bash
# The whole test suite, from a fresh checkout: set up (Caffe build cached), lint, pytest, then the
# deployment tests: a real SLURM array (scripts/test_slurm.sh) and the Docker image built and run with
# podman (scripts/test_container.sh).
#
#   scripts/test.sh [-h|--help] [TEST_PATH...] [-- PYTEST_ARG...]
#
# With TEST_PATHs (tests/test_cli.py, tests/test_cli.py::test_x) or pytest arguments after '--' (e.g.
# -- -x -k demo) only pytest runs, on those; with neither, all of tests/ and both deployment tests run.
# scripts/test.sh itself knows only --help.
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
whole=0
[ ${#paths[@]} -gt 0 ] || [ ${#pytest_args[@]} -gt 0 ] || whole=1
t0=$(date +%s)
scripts/setup.sh --no-run
.venv/bin/ruff check python tests scripts
[ ${#paths[@]} -gt 0 ] || paths=(tests)
.venv/bin/python -m pytest -q "${paths[@]}" "${pytest_args[@]}"
[ "$whole" = 1 ] || exit 0
t1=$(date +%s)
scripts/test_slurm.sh
t2=$(date +%s)
scripts/test_container.sh
t3=$(date +%s)
echo "test: set-up and pytest $((t1 - t0)) s, SLURM $((t2 - t1)) s, container $((t3 - t2)) s; all passed"
