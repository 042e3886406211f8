#!/usr/bin/env bash
# A real SLURM run of the project's job script on a one-node cluster started here, then stopped.
#
#   scripts/test_slurm.sh [-h|--help]
#
# 1. installs slurmctld, slurmd, slurm-client and munge when they are missing (Debian packages; root);
# 2. starts munged (unless one already answers), slurmctld and slurmd with a slurm.conf in a temporary
#    folder (SLURM_CONF; /etc/slurm is never read or written);
# 3. submits scripts/slurm/sweep.sbatch, unchanged, as a 4-task array over a sweep of the miniature
#    model (3 units x 4 seeds), then the dependent gallery job (--gallery-only), and waits for both;
# 4. checks that the shards together ran every run of the grid exactly once, that their images and
#    codes are byte-identical to one process running the whole grid, that the gallery shows every run,
#    and that submitting both again skips everything and changes no result;
# 5. stops every daemon it started, by its pid, also on failure.
# Needs the set-up checkout (scripts/setup.sh --no-run; run here when .venv is missing).
set -euo pipefail
die() { echo "test_slurm: $*" >&2; exit 1; }
say() { echo "test_slurm: $*"; }
source "$(dirname "${BASH_SOURCE[0]}")/lib/args.sh"
no_arguments test_slurm "${BASH_SOURCE[0]}" "$@"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/lib/debian.sh"
ensure_commands test_slurm slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge
[ -x "$root/.venv/bin/dgn-am" ] || "$root/scripts/setup.sh" --no-run
start_all=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/tmp}/dgn-am-slurm.XXXXXX")
chmod 755 "$work"
started=()   # pid files of the daemons this script started, in the order they started
stop_daemons() {
  local rc=$? f pid i p
  if [ -n "${SLURM_CONF:-}" ] && [ ${#started[@]} -gt 1 ]; then
    # Jobs first, while slurmctld can still tell slurmd to end them.
    scancel --quiet --full -u "$(id -un)" 2>/dev/null || true
    for i in $(seq 30); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 1
    done
  fi
  for (( i = ${#started[@]} - 1; i >= 0; i-- )); do
    pid=$(cat "${started[i]}" 2>/dev/null) || continue
    stop_pid "$pid"
  done
  # Whatever is left of a job (slurmstepd and its tasks) holds files in, or runs in, this run's folder.
  for p in /proc/[0-9]*; do
    if [ "$(readlink "$p/cwd" 2>/dev/null)" = "$work" ] || ls -l "$p/fd" 2>/dev/null | grep -qF " $work/"; then
      stop_pid "${p#/proc/}"
    fi
  done
  if [ "$rc" -eq 0 ]; then rm -rf "$work"; else echo "test_slurm: logs kept in $work" >&2; fi
}
stop_pid() {
  local i
  kill "$1" 2>/dev/null || return 0
  for i in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}
trap stop_daemons EXIT
trap 'exit 130' INT TERM   # so that the EXIT trap stops the daemons on ^C or kill too

# --- munge: the node's authentication --------------------------------------------------------------
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || die "no munged answers and only root can start one"
  install -d -o munge -g munge -m 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    install -d -o munge -g munge -m 0700 /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  fi
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/dgn-am-munged.pid
  started+=(/run/munge/dgn-am-munged.pid)
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n | unmunge >/dev/null || die "munged did not start"
fi

# --- slurm.conf for one node: this one ---------------------------------------------------------------
host=$(hostname -s)
node=$(slurmd -C | head -n 1)
mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
node=$(sed "s/RealMemory=[0-9]*/RealMemory=$(( mem * 95 / 100 ))/" <<<"$node")
mkdir -p "$work/state" "$work/spool" "$work/logs"
export SLURM_CONF="$work/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=dgnam
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -i && started+=("$work/slurmctld.pid")
slurmd && started+=("$work/slurmd.pid")
for _ in $(seq 60); do
  state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 1
done
[ "$state" = idle ] || { tail -n 20 "$work/slurmctld.log" "$work/slurmd.log" >&2; die "the node is '$state', not idle"; }
say "one-node cluster up on $host in $(( $(date +%s) - start_all )) s ($(sinfo -h -o '%c CPUs, %m MB'))"

# --- the sweep: 12 runs of the miniature model -------------------------------------------------------
mini_nets="$root/nets/mini" mini_proto="$root/prototxt/mini"
grid=(--units 0,3,7 --seeds 0-3 --n_iters 20 --L2 0.97 --start_lr 1 --end_lr 1e-10 --bound "$mini_nets/fc6_bounds.txt"
  --net_definition "$mini_proto/encoder.prototxt" --net_weights "$mini_nets/encoder.caffemodel"
  --generator_definition "$mini_proto/generator.prototxt" --generator_weights "$mini_nets/generator.caffemodel")
runs=12
out="$work/sweep"
export DGN_AM="$root/.venv/bin/dgn-am"

# With the array tasks' thread counts (sweep.sbatch: one CPU each): OpenBLAS sums some products in
# another order on 2 threads than on 1, so only equal thread counts give byte-identical results.
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$DGN_AM" sweep "${grid[@]}" --output_dir "$work/one-process" --quiet \
  >"$work/logs/one-process.out"
results() { (cd "$1" && find . -maxdepth 1 -type f \( -name '*.png' -o -name '*.jpg' -o -name '*.npz' \) | sort | xargs sha256sum); }

submit() {  # submit ROUND: the array and its gallery job; prints "ARRAY_ID GALLERY_ID"
  local array gallery
  array=$(sbatch --parsable --array=0-3 --chdir="$work" --output="$work/logs/$1-%A_%a.out" \
    "$root/scripts/slurm/sweep.sbatch" "${grid[@]}" --output_dir "$out")
  gallery=$(sbatch --parsable --dependency="afterany:$array" --chdir="$work" --output="$work/logs/$1-gallery-%j.out" \
    "$root/scripts/slurm/sweep.sbatch" --gallery-only --output_dir "$out")
  echo "$array $gallery"
}
wait_for() {  # wait_for JOBID...: until none is pending or running; fails unless all COMPLETED
  local t0 states
  t0=$(date +%s)
  while :; do
    # squeue -t all lists finished jobs too (until MinJobAge); sbatch --wait would poll far less often.
    states=$(squeue -h -t all -j "$(IFS=,; echo "$*")" -o '%i %T' 2>/dev/null || true)
    if [ -n "$states" ] && ! grep -qE 'PENDING|RUNNING|CONFIGURING|COMPLETING' <<<"$states"; then break; fi
    [ $(( $(date +%s) - t0 )) -lt 900 ] || die "jobs $* still running after 900 s: $states"
    sleep 1
  done
  if grep -vq ' COMPLETED$' <<<"$states"; then
    tail -n 20 "$work"/logs/*.out >&2; die "not every job completed: $(tr '\n' ';' <<<"$states")"
  fi
  wait_s=$(( $(date +%s) - t0 ))
}
ran_counts() {  # ran_counts ROUND ARRAY_ID: "ran skipped" summed over the array's task logs
  cat "$work/logs/$1-$2"_*.out | sed -n 's/^shard [0-9]*\/4: \([0-9]*\) of [0-9]* runs: \([0-9]*\) ran.*, \([0-9]*\) skipped.*/\1 \2 \3/p' \
    | awk '{n += $1; r += $2; s += $3; t += 1} END {print t, n, r, s}'
}

read -r array gallery < <(submit first)
wait_for "$array" "$gallery"
read -r tasks listed ran skipped < <(ran_counts first "$array")
say "array $array (4 tasks) and gallery job $gallery finished in $wait_s s: tasks $tasks, their shards $listed runs, $ran ran, $skipped skipped"
[ "$tasks" = 4 ] || die "expected 4 task logs with a summary, found $tasks"
[ "$listed" = "$runs" ] && [ "$ran" = "$runs" ] && [ "$skipped" = 0 ] \
  || die "the shards listed $listed runs and ran $ran (skipped $skipped); the grid has $runs"
manifests=$(find "$out" -maxdepth 1 -name '*.json' | wc -l)
[ "$manifests" = "$runs" ] || die "$manifests manifests for a grid of $runs runs"
[ "$(results "$out")" = "$(results "$work/one-process")" ] \
  || die "the shards' images and codes differ from one process's over the same grid"
for m in "$out"/*.json; do
  grep -qF "$(basename "$m")" "$out/index.html" || die "the gallery does not show $(basename "$m")"
done
grep -q "gallery: $out/index.html" "$work/logs/first-gallery-$gallery.out" || die "the gallery job did not write the gallery"
say "ok: every one of the $runs runs made exactly once, identical to one process's, all $runs in the gallery"

before=$(cd "$out" && find . -type f ! -name index.html ! -name '.*' -printf '%p %s %T@\n' | sort)
read -r array2 gallery2 < <(submit again)
wait_for "$array2" "$gallery2"
read -r tasks listed ran skipped < <(ran_counts again "$array2")
[ "$tasks" = 4 ] && [ "$ran" = 0 ] && [ "$skipped" = "$runs" ] \
  || die "the resubmission ran $ran and skipped $skipped of $runs (over $tasks task logs)"
[ "$before" = "$(cd "$out" && find . -type f ! -name index.html ! -name '.*' -printf '%p %s %T@\n' | sort)" ] \
  || die "the resubmission changed files"
say "ok: the resubmission (array $array2, gallery $gallery2, $wait_s s) skipped all $runs runs and changed no file"
say "passed in $(( $(date +%s) - start_all )) s"
