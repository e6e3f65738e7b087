#!/usr/bin/env bash
# A one-node SLURM cluster on localhost for the real-scheduler tests (issue 27).
#
#   bash .ci/slurm/cluster.sh install          # Debian packages (root; apt-get)
#   bash .ci/slurm/cluster.sh start DIR        # munged + slurmctld + slurmd; prints SLURM_CONF
#   bash .ci/slurm/cluster.sh stop DIR
#
# Everything lives in DIR (config, state, spool, logs, pid files), except munge's key and
# socket, which munged keeps in its Debian places. Accounting is off (no slurmdbd):
# `sacct` has nothing to say, so submitit cannot read a job's state from it and waits for
# the job's result file instead (it warns once per poll; the tests silence that).
set -euo pipefail
cmd="${1:-}"
dir="${2:-}"

install() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null &&
    command -v sbatch >/dev/null && return 0
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

start() {
  mkdir -p "$dir"/{state,spool,log}
  local host cpus mem
  host="$(hostname -s)"
  cpus="$(nproc)"
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048 ))
  cat > "$dir/slurm.conf" <<CONF
ClusterName=moricci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MpiDefault=none
KillWait=5
# A requeued job waits cred_expire seconds before it may start again (default 120 s:
# two thirds of each requeue test's time); 10 s is ample on one node.
AuthInfo=cred_expire=10
# ... and is started by the next scheduling pass (defaults: 60 s main loop, 30 s backfill).
SchedulerParameters=sched_interval=2,bf_interval=2
InactiveLimit=0
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
  if [[ ! -s /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chmod 400 /etc/munge/munge.key
  fi
  chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge 2>/dev/null || true
  mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
  if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- /usr/sbin/munged 2>/dev/null || /usr/sbin/munged --force
  fi
  export SLURM_CONF="$dir/slurm.conf"
  if pgrep -r R,S,D -x slurmctld >/dev/null || pgrep -r R,S,D -x slurmd >/dev/null; then
    echo "a SLURM daemon is already running on this machine; stop it first" >&2
    return 1
  fi
  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 1 60); do
    alive=1
    for p in slurmctld slurmd; do
      [[ -f "$dir/$p.pid" ]] && kill -0 "$(cat "$dir/$p.pid")" 2>/dev/null || alive=0
    done
    if [[ $alive == 1 ]] && sinfo -h -o %T 2>/dev/null | grep -qE "^idle"; then
      echo "SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    sleep 1
  done
  echo "SLURM did not come up; logs in $dir/log" >&2
  tail -n 20 "$dir/log/"*.log >&2 || true
  return 1
}

stop() {
  for p in slurmd slurmctld; do
    if [[ -f "$dir/$p.pid" ]]; then
      kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
    fi
  done
  for _ in $(seq 1 20); do
    [[ -f "$dir/slurmd.pid" ]] && kill -0 "$(cat "$dir/slurmd.pid")" 2>/dev/null || break
    sleep 0.5
  done
}

case "$cmd" in
  install) install ;;
  start) [[ -n "$dir" ]] || { echo "usage: $0 start DIR" >&2; exit 2; }; start ;;
  stop) [[ -n "$dir" ]] || { echo "usage: $0 stop DIR" >&2; exit 2; }; stop ;;
  *) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2 ;;
esac
