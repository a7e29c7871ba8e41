#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for tests/slurm.rs (which .ci/run runs after this).
# Debian, as root, no systemd needed: installs slurm-wlm and munge (if missing), writes
# /etc/slurm/slurm.conf for one node (this host at 127.0.0.1, its CPUs and memory from
# `slurmd -C`; cons_tres per CPU, proctrack/linuxproc, task/none, no cgroups, no accounting,
# everything as root), makes a munge key, starts munged, slurmctld and slurmd, and waits until
# `sinfo` shows the node idle. Idempotent: a cluster already up with this configuration is left
# as it is. `--check` also submits `sbatch --wrap 'echo hi'` and waits for its output.
set -euo pipefail
log() { echo "slurm_local.sh: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}
[ "$(id -u)" -eq 0 ] || die "run as root: it installs packages and starts munged, slurmctld and slurmd"
check=0
[ "${1:-}" = "--check" ] && check=1

STATE=/var/lib/ayt-slurm # spool folders and logs
CONF=/etc/slurm/slurm.conf
HOST=$(hostname -s)

install_packages() {
  local need=()
  for pkg in slurm-wlm munge; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
      die "apt-get install ${need[*]} failed"
  fi
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null ||
    die "slurmctld, slurmd or munged not on PATH after installing slurm-wlm and munge"
}

# The node line: what slurmd detects (CPUs, sockets, cores, threads, RealMemory), named $HOST.
node_line() {
  local detected
  detected=$(slurmd -C | head -n 1) || die "slurmd -C could not detect this machine's hardware"
  case "$detected" in NodeName=*) ;; *) die "unexpected output of slurmd -C: $detected" ;; esac
  echo "$detected" | sed -e "s/^NodeName=[^ ]*/NodeName=$HOST NodeAddr=127.0.0.1/" -e 's/$/ State=UNKNOWN/'
}

write_conf() {
  mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" "$STATE/log"
  cat >"$CONF.new" <<EOF
# Written by ayt's scripts/slurm_local.sh: a one-node test cluster on $HOST.
ClusterName=ayt-local
SlurmctldHost=$HOST(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
# Short waits: tests cancel tasks and wait for them.
KillWait=5
MinJobAge=60
SlurmdTimeout=60
$(node_line)
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
  if [ -f "$CONF" ] && cmp -s "$CONF" "$CONF.new"; then
    rm "$CONF.new"
    return 1 # unchanged
  fi
  mv "$CONF.new" "$CONF"
  return 0
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
    for _ in $(seq 50); do
      munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
      sleep 0.1
    done
    die "munged started but 'munge -n | unmunge' fails (see /var/log/munge/munged.log)"
  fi
}

stop_slurm() {
  for pid in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
    if running "$pid"; then
      kill "$(cat "$pid")" 2>/dev/null || true
      for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
    fi
  done
}

start_slurm() {
  if ! running "$STATE/slurmctld.pid"; then
    log "starting slurmctld"
    slurmctld || die "slurmctld did not start (see $STATE/log/slurmctld.log)"
  fi
  if ! running "$STATE/slurmd.pid"; then
    log "starting slurmd"
    slurmd -N "$HOST" || die "slurmd did not start (see $STATE/log/slurmd.log)"
  fi
}

node_state() { sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | head -n 1; }

wait_idle() {
  local state=""
  for _ in $(seq 120); do
    state=$(node_state)
    case "$state" in idle | mixed | allocated | completing) return 0 ;; esac
    sleep 0.5
  done
  log "the node is not up after 60 s (sinfo says: '${state:-no answer}'); the last log lines:"
  tail -n 15 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
  die "the cluster did not come up"
}

smoke_test() {
  local out
  out=$(mktemp -d)
  local id
  id=$(sbatch --parsable --chdir "$out" --output "$out/hi.out" --wrap 'echo hi') || die "sbatch --wrap 'echo hi' was refused"
  for _ in $(seq 120); do
    if [ "$(cat "$out/hi.out" 2>/dev/null)" = "hi" ] && [ -z "$(squeue -h -j "$id" 2>/dev/null)" ]; then
      log "job $id ran: $out/hi.out says hi"
      rm -rf "$out"
      return 0
    fi
    sleep 0.5
  done
  die "job $id did not print 'hi' within 60 s (squeue: $(squeue -h -j "$id" 2>&1))"
}

start=$(date +%s)
install_packages
if write_conf; then
  stop_slurm # a configuration change: restart the daemons on it
fi
start_munge
start_slurm
wait_idle
[ "$check" -eq 1 ] && smoke_test
log "node $HOST is $(node_state) ($(($(date +%s) - start)) s); logs in $STATE/log"
