#!/usr/bin/env bash
# One command from a fresh checkout to a result:
#
#   scripts/setup.sh [-h|--help] [--cuda] [--no-run]
#
# 1. builds Caffe at the pinned source unless a cached build exists (scripts/install_caffe.sh);
# 2. creates .venv/ in the checkout with the package installed (editable) and pycaffe importable;
# 3. runs the main job (scripts/main_job.sh) unless --no-run.
#
# Environment: PYTHON (interpreter for the venv, default python3), and those of install_caffe.sh.
set -euo pipefail
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

run_main=1
caffe_flags=()
for arg in "$@"; do
  case "$arg" in
    --cuda) caffe_flags+=(--cuda) ;;
    --no-run) run_main=0 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "setup: unknown option '$arg' (see --help)" >&2; exit 1 ;;
    *) echo "setup: unexpected argument '$arg' (it takes only options; see --help)" >&2; exit 1 ;;
  esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
python=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $python" >&2
  "$python" -m venv .venv
fi
venv_py=$root/.venv/bin/python

# The package and its test tools; quiet unless something is missing.
"$venv_py" -m pip install -q --disable-pip-version-check -e ".[test]" >&2

prefix=$(scripts/install_caffe.sh --python "$venv_py" "${caffe_flags[@]}" | tail -n 1)

# pycaffe is not a pip package: a .pth file puts the cached build's python/ folder on the venv's path.
site=$("$venv_py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$prefix/python" >"$site/dgn_am_caffe.pth"
"$venv_py" -c 'import os; os.environ["GLOG_minloglevel"] = "2"; import caffe' \
  || { echo "setup: pycaffe at $prefix/python does not import" >&2; exit 1; }
echo "setup: ready (.venv, Caffe at $prefix)" >&2

if [ "$run_main" = 1 ]; then
  exec scripts/main_job.sh
fi
