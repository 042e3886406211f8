#!/usr/bin/env bash
# Build the project's Docker image from the Dockerfile as it is, with podman and no registry, and run it.
#
#   scripts/test_container.sh [-h|--help]
#
# 1. installs podman, runc and mmdebstrap when they are missing (Debian packages; needs root);
# 2. makes a Debian bookworm base image with mmdebstrap from this machine's own Debian mirror (nothing is
#    pulled), holding this machine's extra CA certificates so that apt and pip in the build reach their
#    archives through its proxy;
# 3. builds the image: `podman build --build-arg BASE_IMAGE=<that base>` of the unchanged Dockerfile;
# 4. runs the image with --network none: the default command (the demo, must PASS, as the calling
#    user), `dgn-am synthesize --help`, `dgn-am synthesize` on random-weight models of the real
#    architectures mounted read-only from the host, as a uid with no account in the image (the files it
#    writes on the host must be that uid's), and `synthesize --gpu 0` with no GPU given to the container
#    (one line, exit 2). Exit codes and the files written on the host are checked, and, where the checkout
#    is set up, the synthesize run is made again with its own CPU Caffe: the images and codes must be
#    byte-identical.
# Prints the build time, the image size and each check; exits 0 only when every check passed.
# Storage, layer cache and base image live in $DGN_AM_CACHE_DIR/containers (default
# ~/.cache/dgn-am/containers), so a second run rebuilds only the layers whose inputs changed.
#
# Environment: DGN_AM_CACHE_DIR, DGN_AM_IMAGE (the tag built, default localhost/dgn-am:test).
set -euo pipefail
die() { echo "test_container: $*" >&2; exit 1; }
say() { echo "test_container: $*"; }
source "$(dirname "${BASH_SOURCE[0]}")/lib/args.sh"
no_arguments test_container "${BASH_SOURCE[0]}" "$@"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${DGN_AM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dgn-am}
state="$cache_root/containers"
image=${DGN_AM_IMAGE:-localhost/dgn-am:test}
suite=bookworm
source "$root/scripts/lib/debian.sh"

# --- tools -------------------------------------------------------------------------------------
ensure_commands "test_container" podman:podman runc:runc mmdebstrap:mmdebstrap

# --- podman configured for this machine, its state outside the checkout --------------------------
# crun fails on hybrid cgroups, and podman's default ulimits (about 10^6 files and processes) need a
# capability a sandbox may lack: runc, cgroupfs, and limits no higher than this shell's and than those
# seen to work in such a sandbox (20000 files, 32768 processes).
mkdir -p "$state/storage" "$state/run" "$state/tmp"
lower() { if [ "$1" = unlimited ] || [ "$1" -gt "$2" ]; then echo "$2"; else echo "$1"; fi; }
nofile=$(lower "$(ulimit -Hn)" 20000)
nproc=$(lower "$(ulimit -Hu)" 32768)
cat >"$state/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$state/storage"
runroot = "$state/run"
EOF
cat >"$state/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$state/events.log"
EOF
export CONTAINERS_STORAGE_CONF="$state/storage.conf" CONTAINERS_CONF="$state/containers.conf" TMPDIR="$state/tmp"

work=$(mktemp -d "$state/tmp/test.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# --- the base image: Debian from this machine's mirror -------------------------------------------
mapfile -t mirror_lines < <(debian_mirror_lines "$suite")
[ ${#mirror_lines[@]} -gt 0 ] || die "found no Debian mirror in this machine's apt sources"
certs=(/usr/local/share/ca-certificates/*.crt)
[ -e "${certs[0]}" ] || certs=()
base_key=$( { printf '%s\n' "$suite" "${mirror_lines[@]}"; cat "${certs[@]}" /dev/null; } | sha256sum | cut -c1-16)
base="localhost/dgn-am-base:$suite-$base_key"
if podman image exists "$base"; then
  say "base image $base (cached)"
else
  say "making the base image with mmdebstrap from: ${mirror_lines[*]}"
  start=$(date +%s)
  hooks=()
  if [ ${#certs[@]} -gt 0 ]; then
    hooks+=(--customize-hook="copy-in ${certs[*]} /usr/local/share/ca-certificates/"
      --customize-hook='chroot "$1" update-ca-certificates')
  fi
  # pip in the build checks certificates against the system store, which now holds the machine's own.
  hooks+=(--customize-hook='printf "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n" >"$1/etc/pip.conf"')
  mmdebstrap --quiet --variant=minbase --include=ca-certificates "${hooks[@]}" "$suite" "$work/base.tar" \
    "${mirror_lines[@]}" >"$work/mmdebstrap.log" 2>&1 || { tail -n 20 "$work/mmdebstrap.log" >&2; die "mmdebstrap failed"; }
  podman import -q "$work/base.tar" "$base" >/dev/null
  rm -f "$work/base.tar"
  say "base image made in $(( $(date +%s) - start )) s"
fi

# --- the image -----------------------------------------------------------------------------------
say "building $image from $root/Dockerfile (log: $state/build.log)"
start=$(date +%s)
podman build --pull=never --network host --build-arg "BASE_IMAGE=$base" -t "$image" -f "$root/Dockerfile" "$root" \
  >"$state/build.log" 2>&1 || { tail -n 40 "$state/build.log" >&2; die "podman build failed; full log: $state/build.log"; }
build_s=$(( $(date +%s) - start ))
# Images this tag no longer names go; the layers of the one it names stay, as the next build's cache.
podman image prune -f >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$image")
say "build: $build_s s; image size: $(( size / 1000000 )) MB ($size bytes)"

# --- the checks ----------------------------------------------------------------------------------
failed=0
checked=0
check() {  # check NAME EXPECTED_RC COMMAND...: run it, keep its output in $work/NAME.log
  local name=$1 want=$2 rc=0 t0
  shift 2
  t0=$(date +%s)
  "$@" >"$work/$name.log" 2>&1 || rc=$?
  checked=$((checked + 1))
  if [ "$rc" = "$want" ]; then
    last_ok=1
  else
    last_ok=0; failed=$((failed + 1))
    say "FAIL $name: exit $rc (expected $want); its output ends:"; tail -n 15 "$work/$name.log" | sed 's/^/    /'
  fi
  last_s=$(( $(date +%s) - t0 ))
}
expect() {  # expect NAME DESCRIPTION TEST...: a further condition on a check that exited as expected
  local name=$1 what=$2
  shift 2
  [ "$last_ok" = 1 ] || return 0
  if ! "$@"; then
    last_ok=0; failed=$((failed + 1)); say "FAIL $name: $what"; tail -n 15 "$work/$name.log" | sed 's/^/    /'
  fi
}
passed() { [ "$last_ok" = 1 ] && say "ok   $1 ($last_s s): $2"; return 0; }
owned_by() { [ -z "$(find "$2" ! -user "$1" -print -quit)" ]; }
run=(podman run --rm --network none)
# Which OpenBLAS kernel runs changes the last bits of every result: a sandbox that sets OPENBLAS_CORETYPE
# (say Haswell on an AVX-512 CPU) must set it in the container too, or the two builds are not compared alike.
while IFS='=' read -r name _; do run+=(-e "$name"); done < <(env | grep '^OPENBLAS_' || true)
me="$(id -u):$(id -g)"

mkdir -m 0777 "$work/out"
check demo 0 "${run[@]}" --user "$me" -v "$work/out:/out" "$image"
expect demo "it did not print PASS" grep -q '^PASS' "$work/demo.log"
expect demo "no montage.png and index.html in the mounted folder" \
  test -s "$work/out/demo/montage.png" -a -s "$work/out/demo/index.html"
expect demo "files on the host are not the calling user's ($me)" owned_by "$(id -u)" "$work/out/demo"
passed demo "the default command: $(grep -m1 'independent classifier' "$work/demo.log" || echo PASS)"

check help 0 "${run[@]}" "$image" synthesize --help
expect help "no usage line" grep -q '^usage: dgn-am synthesize' "$work/help.log"
passed help "dgn-am synthesize --help"

mkdir "$work/models"
check make-models 0 "${run[@]}" -v "$work/models:/made" --entrypoint /opt/dgn-am/.venv/bin/python "$image" -c "
from dgn_am.backend import save_random_weights as save
save('/opt/dgn-am/prototxt/caffenet.prototxt', '/made/caffenet.caffemodel', 1)
save('/opt/dgn-am/prototxt/generator_fc6.prototxt', '/made/generator.caffemodel', 2)"
passed make-models "random-weight CaffeNet and fc6 generator, written to the host"

# A cluster user: a uid the image has no account for, writing to a folder of its own.
user=4242
install -d -o "$user" -g "$user" "$work/synth"
models=(-v "$work/models:/models:ro" -v "$work/synth:/out")
synth_args() {  # synth_args MODELS OUT: the synthesize line of these checks
  synth=(synthesize --net_weights "$1/caffenet.caffemodel" --generator_weights "$1/generator.caffemodel"
    --unit 643 --n_iters 3 --output_dir "$2")
}
synth_args /models /out
check synthesize 0 "${run[@]}" --user "$user:$user" "${models[@]}" "$image" "${synth[@]}"
expect synthesize "no image and manifest on the host" \
  test -n "$(find "$work/synth" -name '*.json' -size +0)" -a -n "$(find "$work/synth" -name '*.jpg' -size +0)"
expect synthesize "files on the host are not uid $user's" owned_by "$user" "$work/synth"
expect synthesize "the manifest does not say CPU" grep -rq '"device": "CPU' "$work/synth" --include='*.json'
passed synthesize "3 iterations of CaffeNet unit 643 as uid $user: $(find "$work/synth" -type f | wc -l) files"

# The image's CUDA build of Caffe, in CPU mode, against this checkout's CPU build: the same bytes.
if [ -x "$root/.venv/bin/dgn-am" ]; then
  synth_args "$work/models" "$work/host"
  check host-identical 0 env GLOG_minloglevel=2 "$root/.venv/bin/dgn-am" "${synth[@]}" --quiet
  synth_args /models /out
  expect host-identical "the image's results differ from this checkout's" \
    test "$(cd "$work/synth" && find . -type f \( -name '*.npz' -o -name '*.png' -o -name '*.jpg' \) | sort | xargs sha256sum)" \
    = "$(cd "$work/host" && find . -type f \( -name '*.npz' -o -name '*.png' -o -name '*.jpg' \) | sort | xargs sha256sum)"
  passed host-identical "the same run with this checkout's CPU Caffe wrote byte-identical images and codes"
fi

before=$(find "$work/synth" -type f | sort | xargs sha256sum)
check gpu 2 "${run[@]}" --user "$user:$user" "${models[@]}" "$image" "${synth[@]}" --gpu 0 --overwrite
expect gpu "not one line naming --gpu 0" test "$(wc -l <"$work/gpu.log")" = 1 -a -n "$(grep -- '--gpu 0' "$work/gpu.log")"
expect gpu "it changed the results" test "$before" = "$(find "$work/synth" -type f | sort | xargs sha256sum)"
passed gpu "no GPU given to the container: $(cat "$work/gpu.log")"

check build-info 0 "${run[@]}" --entrypoint /bin/sh "$image" -c 'cat /opt/dgn-am-cache/caffe/*/build.json'
expect build-info "the image's Caffe is not a CUDA build" grep -q '"cuda": true' "$work/build-info.log"
passed build-info "Caffe $(grep -o 'DCUDA_ARCH_BIN=[^"]*' "$work/build-info.log"), $(grep -o 'DCUDA_ARCH_PTX=[^"]*' "$work/build-info.log")"

if [ "$failed" -gt 0 ]; then die "$failed of $checked checks failed"; fi
say "all $checked checks passed (build $build_s s, image $(( size / 1000000 )) MB)"
